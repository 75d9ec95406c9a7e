// The web server's options: defaults, sources, validation, and what the add-on sets.
#include "ecu2mqtt/app/addon.hpp"
#include "ecu2mqtt/app/options.hpp"

#include <catch2/catch.hpp>

using namespace ecu2mqtt;
using Catch::Contains;

TEST_CASE("http options: defaults, environment, config file and command line") {
    const auto defaults = parse_command_line({}, {}).options;
    CHECK(defaults.http);
    CHECK(defaults.http_address == "127.0.0.1");
    CHECK(defaults.http_port == 8099);
    CHECK(defaults.http_allow_peers.empty());
    CHECK(defaults.http_timeout == std::chrono::seconds(10));
    CHECK(defaults.dns_check_name == "ecu.apsystemsema.com");

    const auto env = parse_command_line({}, {{"ECU2MQTT_HTTP_LISTEN", "[::]:9000"},
                                             {"ECU2MQTT_HTTP", "false"},
                                             {"ECU2MQTT_HTTP_ALLOW_PEERS", "10.0.0.1,::1"}})
                         .options;
    CHECK(env.http_address == "::");
    CHECK(env.http_port == 9000);
    CHECK_FALSE(env.http);
    CHECK(env.http_allow_peers == std::vector<std::string>{"10.0.0.1", "::1"});

    const auto cli = parse_command_line({"--http-listen", "0.0.0.0:8100", "--no-http",
                                         "--http-timeout", "3", "--dns-check-name", "localhost"},
                                        {})
                         .options;
    CHECK(cli.http_address == "0.0.0.0");
    CHECK(cli.http_port == 8100);
    CHECK_FALSE(cli.http);
    CHECK(cli.http_timeout == std::chrono::seconds(3));
    CHECK(cli.dns_check_name == "localhost");
}

TEST_CASE("http options: bad values name the option and say what is expected") {
    CHECK_THROWS_WITH(parse_command_line({"--http-listen", "8099"}, {}),
                      Contains("--http-listen: expected ADDR:PORT"));
    CHECK_THROWS_WITH(parse_command_line({"--http-listen", "myhost:8099"}, {}),
                      Contains("is not an IP address"));
    CHECK_THROWS_WITH(parse_command_line({}, {{"ECU2MQTT_HTTP_LISTEN", "1.2.3.4:99999"}}),
                      Contains("ECU2MQTT_HTTP_LISTEN: expected a port"));
    CHECK_THROWS_WITH(parse_command_line({"--http-allow-peers", "supervisor"}, {}),
                      Contains("--http-allow-peers: expected IP addresses"));
    CHECK_THROWS_WITH(parse_command_line({"--http-timeout", "0"}, {}), Contains("--http-timeout"));
}

TEST_CASE("the add-on serves the page on all interfaces to the ingress proxy only") {
    const auto args = addon_arguments(nlohmann::json::object(), std::nullopt, "/data");
    const auto o = parse_command_line(args, {}).options;
    CHECK(o.http);
    CHECK(o.http_address == "0.0.0.0");
    CHECK(o.http_port == 8099); // ingress_port in ha-addon/config.yaml
    CHECK(o.http_allow_peers == std::vector<std::string>{"172.30.32.2"});
}
