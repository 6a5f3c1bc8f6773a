"""How the control plane is served: daphne and its request intake, the sync path, request threads.

`server` starts daphne (one process or several on one socket); `daphne_server` and `intake` judge
each request before its body is read; `sync_path` runs synchronous views in one thread hop;
`direct` calls the SDK's hot views (`served_directly = True`) without Django's request layers,
and `batching` answers the SDK's log posts many at a time;
`handler` lends threads to the ASGI handler's waiting views; `flow` gives long-lived streams
back-pressure.
"""
