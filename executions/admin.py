"""Admin registrations of the executions app."""

from executions import memory_admin  # noqa: F401 - registers MemoryEntryAdmin
