import pytest

from agentfield_project import netguard as guard

LOOPBACK_ONLY = guard.parse_networks(["127.0.0.1/32"])


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.0.0.2",
        "0.0.0.0",  # noqa: S104
        "0.1.2.3",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "224.0.0.1",
        "239.255.255.250",
        "255.255.255.255",
        "240.0.0.1",
        "192.0.0.8",
        "192.0.2.1",
        "198.18.0.1",
        "192.88.99.1",
        "::",
        "::1",
        "fe80::1",
        "fe80::1%eth0",
        "fd00::1",
        "fc00::1",
        "ff02::1",
        "2001:db8::1",
        "fec0::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::a00:1",
        "2002:a00:1::1",
        "100::1",
        "3fff::1",
        "5f00::1",
    ],
)
def test_non_public_addresses_are_refused(address):
    assert not guard.permitted(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "93.184.215.14", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_permitted(address):
    assert guard.permitted(address)


def test_allowed_networks_open_exactly_what_they_contain():
    assert guard.permitted("127.0.0.1", LOOPBACK_ONLY)
    assert guard.permitted("::ffff:127.0.0.1", LOOPBACK_ONLY)  # the same address, IPv4-mapped
    assert not guard.permitted("127.0.0.2", LOOPBACK_ONLY)
    assert not guard.permitted("::1", LOOPBACK_ONLY)
    assert not guard.permitted("10.0.0.1", LOOPBACK_ONLY)
    assert guard.permitted("10.1.2.3", guard.parse_networks(["10.0.0.0/8"]))


def test_garbage_is_refused():
    assert not guard.permitted("not-an-ip")
    assert not guard.permitted("")


def test_choose_drops_refused_addresses_and_keeps_dns_order():
    assert guard.choose(["10.0.0.1", "8.8.8.8", "1.1.1.1"]) == "8.8.8.8"
    assert guard.choose(["10.0.0.1", "169.254.169.254"]) is None
    assert guard.choose([]) is None


def test_parse_networks_names_a_bad_entry():
    assert guard.parse_networks(["", " 127.0.0.1/32 ", "::1/128", "10.1.2.3/8"])[2].with_prefixlen == "10.0.0.0/8"
    with pytest.raises(ValueError, match="nonsense"):
        guard.parse_networks(["nonsense"])
