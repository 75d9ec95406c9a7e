// Host, port and CIDR texts from the options, and the start-up check against forwarding to
// ourselves.
#include "ecu2mqtt/net/host_port.hpp"
#include "ecu2mqtt/net/self_forwarding.hpp"
#include "ecu2mqtt/net/tls_probe.hpp"

#include <catch2/catch.hpp>

using namespace ecu2mqtt;
using namespace std::chrono_literals;

TEST_CASE("HOST[:PORT]: names, IPv4, IPv6 with and without brackets") {
    const auto name = parse_host_port("ecu.apsystemsema.com:8995");
    CHECK(name.host == "ecu.apsystemsema.com");
    CHECK(name.port == 8995);
    CHECK(parse_host_port("ecu.apsystemsema.com.").host == "ecu.apsystemsema.com");
    CHECK_FALSE(parse_host_port("3.120.7.9").port);
    const auto v6 = parse_host_port("[2001:db8::1]:53");
    CHECK(v6.host == "2001:db8::1");
    CHECK(v6.port == 53);
    CHECK(parse_host_port("2001:db8::1").host == "2001:db8::1");
    CHECK(host_port_text(v6) == "[2001:db8::1]:53");
    CHECK(host_port_text(parse_host_port("localhost")) == "localhost");
}

TEST_CASE("HOST[:PORT]: what would only fail at the first connection is refused now") {
    CHECK_THROWS_WITH(parse_host_port("1.1.1.1:"), Catch::Contains("no port after ':'"));
    CHECK_THROWS_WITH(parse_host_port("1.1.1.1:0"), Catch::Contains("not from 1 to 65535"));
    CHECK_THROWS_WITH(parse_host_port("1.1.1.1:65536"), Catch::Contains("not from 1 to 65535"));
    CHECK_THROWS_WITH(parse_host_port("1.1.1.1:53x"), Catch::Contains("not from 1 to 65535"));
    CHECK_THROWS_WITH(parse_host_port(":53"), Catch::Contains("no host"));
    CHECK_THROWS_WITH(parse_host_port("2001:db8::1:53:x"), Catch::Contains("in brackets"));
    CHECK_THROWS(parse_host_port("[2001:db8::1]53"));
    CHECK_THROWS(parse_host_port("[not-v6]:53"));
    for (const char* bad : {"a..b", ".", "host..", "-host.lan", "host-.lan", "under_score.lan",
                            "1.2.3.256", "ex ample.com"})
        CHECK_THROWS_AS(parse_host_port(bad), std::invalid_argument);
    CHECK(is_dns_name(std::string(63, 'a') + ".lan"));
    CHECK_FALSE(is_dns_name(std::string(64, 'a') + ".lan"));
}

TEST_CASE("CIDR ranges: the prefix must fit the address family") {
    CHECK_NOTHROW(check_cidr("192.168.1.0/24"));
    CHECK_NOTHROW(check_cidr("10.0.0.7"));
    CHECK_NOTHROW(check_cidr("fd00::/8"));
    CHECK_NOTHROW(check_cidr("::/0"));
    CHECK_THROWS_WITH(check_cidr("192.168.1.0/33"), Catch::Contains("from 0 to 32"));
    CHECK_THROWS_WITH(check_cidr("fd00::/129"), Catch::Contains("from 0 to 128"));
    CHECK_THROWS(check_cidr("10.0.0.0/"));
    CHECK_THROWS(check_cidr("10.0.0.0/8/8"));
    CHECK_THROWS(check_cidr("lan/24"));
}

TEST_CASE("forwarding to this host itself is refused, elsewhere or through a resolver it is not") {
    ForwarderConfig target;
    target.timeout = 2s;
    target.host = "localhost"; // the name resolves to loopback: like a DNS rewrite to us
    CHECK_THAT(check_self_forwarding(target, {8995}).refusal,
               Catch::Contains("\"localhost\" resolves to") &&
                   Catch::Contains("an address of this host"));
    target.resolver = "1.1.1.1";
    CHECK(check_self_forwarding(target, {8995}).refusal.empty()); // resolved elsewhere

    target = {};
    target.host = "127.0.0.1"; // an address literal: a deliberate choice, unless it is our port
    target.port = 9000;
    CHECK(check_self_forwarding(target, {8995}).refusal.empty());
    CHECK_FALSE(check_self_forwarding(target, {9000}).refusal.empty());
    target.port.reset(); // the ECU's port, which we listen on
    CHECK_FALSE(check_self_forwarding(target, {8995}).refusal.empty());
    target.host = "192.0.2.1"; // TEST-NET: never ours
    CHECK(check_self_forwarding(target, {8995}).refusal.empty());
    CHECK(is_own_address(boost::asio::ip::make_address("::1")));
    CHECK(is_own_address(boost::asio::ip::make_address("::ffff:127.0.0.1")));
    CHECK_FALSE(is_own_address(boost::asio::ip::make_address("192.0.2.1")));
}

TEST_CASE("forwarding is a loop only to an address the listener is bound to") {
    using boost::asio::ip::make_address;
    ForwarderConfig target;
    target.host = "127.0.0.2"; // ours, but a listener bound to 127.0.0.1 does not answer there
    CHECK(check_self_forwarding(target, {8995}, "127.0.0.1").refusal.empty());
    CHECK_FALSE(check_self_forwarding(target, {8995}, "0.0.0.0").refusal.empty());
    CHECK_FALSE(check_self_forwarding(target, {8995}, "::").refusal.empty());
    target.host = "127.0.0.1";
    CHECK_FALSE(check_self_forwarding(target, {8995}, "127.0.0.1").refusal.empty());
    CHECK(reaches_listener(make_address("::ffff:127.0.0.1"), "127.0.0.1"));
    CHECK(reaches_listener(make_address("0.0.0.0"), "127.0.0.1")); // connects to loopback
    CHECK_FALSE(reaches_listener(make_address("::1"), "127.0.0.1"));
    CHECK(reaches_listener(make_address("127.0.0.9"), ""));
    CHECK_FALSE(reaches_listener(make_address("192.0.2.1"), "0.0.0.0"));
    target = {};
    target.timeout = 2s;
    target.host = "localhost"; // resolves to 127.0.0.1 (and ::1): a listener on 127.0.0.2 is safe
    CHECK(check_self_forwarding(target, {8995}, "127.0.0.2").refusal.empty());
    CHECK_FALSE(check_self_forwarding(target, {8995}, "127.0.0.1").refusal.empty());
}

TEST_CASE("the TLS target of a broker URL") {
    const auto target = tls_target_of("mqtts://broker.lan:8884", "/etc/ca.pem");
    REQUIRE(target);
    CHECK(target->host == "broker.lan");
    CHECK(target->port == 8884);
    CHECK(target->ca_file == "/etc/ca.pem");
    CHECK(tls_target_of("mqtts://[::1]", "")->port == 8883);
    CHECK(tls_target_of("mqtts://[::1]", "")->host == "::1");
    CHECK_FALSE(tls_target_of("mqtt://broker.lan:1883", ""));
    CHECK_FALSE(tls_target_of("mqtts://", ""));
}

TEST_CASE("addresses an ECU can connect to, written one way") {
    CHECK(canonical_unicast_address("2001:DB8::5") == "2001:db8::5");
    CHECK(canonical_unicast_address("2001:db8:0:0:0:0:0:5") == "2001:db8::5");
    CHECK(canonical_unicast_address("::ffff:192.0.2.7") == "192.0.2.7");
    CHECK(canonical_unicast_address("192.168.1.10") == "192.168.1.10");
    CHECK(canonical_unicast_address("127.0.0.1") == "127.0.0.1"); // a simulator on this host
    CHECK_FALSE(canonical_unicast_address("0.0.0.0"));
    CHECK_FALSE(canonical_unicast_address("::"));
    CHECK_FALSE(canonical_unicast_address("224.0.0.1"));
    CHECK_FALSE(canonical_unicast_address("fe80::1%eth0"));
    CHECK_FALSE(canonical_unicast_address("ecu.local"));
    CHECK_FALSE(canonical_unicast_address(""));
}
