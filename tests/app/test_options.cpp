#include "ecu2mqtt/app/options.hpp"
#include "support/mosquitto_broker.hpp"
#include "support/test_paths.hpp"

#include <catch2/catch.hpp>
#include <fstream>

using namespace ecu2mqtt;

namespace {
using Env = std::map<std::string, std::string>;
CommandLine parse(std::vector<std::string> args, Env env = {}) {
    return parse_command_line(args, env);
}
} // namespace

TEST_CASE("defaults match the documented ones") {
    const auto o = parse({}, {{"HOME", "/home/pv"}}).options;
    CHECK(o.listen_address == "0.0.0.0");
    CHECK(o.ports == std::vector<std::uint16_t>{8995, 8996, 8997});
    CHECK(o.max_message_bytes == 65536);
    CHECK(o.idle_timeout == std::chrono::seconds(30));
    CHECK(o.max_connections == 64);
    CHECK(o.mqtt_url == "mqtt://localhost:1883");
    CHECK(o.base_topic == "ecu2mqtt");
    CHECK(o.discovery_prefix == "homeassistant");
    CHECK(o.discovery);
    CHECK_FALSE(o.publish_raw);
    CHECK(o.ecu_timeout == std::chrono::minutes(15));
    CHECK(o.state_dir == "/home/pv/.local/state/ecu2mqtt");
}

TEST_CASE("command line beats environment beats config file") {
    const auto dir = test::make_temp_dir("ecu2mqtt-options");
    const auto file = (dir / "config.json").string();
    std::ofstream(file) << R"({"ports": [1, 2], "log_level": "warn", "base_topic": "solar",
                              "discovery": false, "mqtt_user": "file-user"})";
    const auto cl = parse({"--config", file, "--log-level", "debug"},
                          {{"ECU2MQTT_BASE_TOPIC", "pv"}, {"ECU2MQTT_LOG_LEVEL", "error"}});
    CHECK(cl.options.ports == std::vector<std::uint16_t>{1, 2}); // file
    CHECK(cl.options.base_topic == "pv");                        // env over file
    CHECK(cl.options.log_level == LogLevel::Debug);              // cli over env
    CHECK_FALSE(cl.options.discovery);
    CHECK(cl.options.mqtt_user == "file-user");
    std::filesystem::remove_all(dir);
}

TEST_CASE("flags and --name=value forms") {
    const auto o =
        parse({"--no-discovery", "--publish-raw", "--ports=9000,9001", "--listen", "::"}).options;
    CHECK_FALSE(o.discovery);
    CHECK(o.publish_raw);
    CHECK(o.ports == std::vector<std::uint16_t>{9000, 9001});
    CHECK(o.listen_address == "::");
    CHECK(parse({}, {{"ECU2MQTT_DISCOVERY", "false"}}).options.discovery == false);
}

TEST_CASE("bad values are rejected with the option's name") {
    CHECK_THROWS_WITH(parse({"--ports", "8995,x"}), Catch::Contains("--ports"));
    CHECK_THROWS_WITH(parse({"--ports", "70000"}), Catch::Contains("65535"));
    CHECK_THROWS_WITH(parse({"--log-level", "loud"}), Catch::Contains("--log-level"));
    CHECK_THROWS_WITH(parse({"--mqtt-url", "http://x"}), Catch::Contains("mqtt://"));
    CHECK_THROWS_WITH(parse({"--frobnicate"}), Catch::Contains("unknown option"));
    CHECK_THROWS_WITH(parse({"--idle-timeout"}), Catch::Contains("needs a value"));
    CHECK_THROWS_WITH(parse({}, {{"ECU2MQTT_MAX_CONNECTIONS", "0"}}),
                      Catch::Contains("ECU2MQTT_MAX_CONNECTIONS"));
    CHECK_THROWS_WITH(parse({"--config", "/nonexistent/ecu2mqtt.json"}),
                      Catch::Contains("cannot open"));
}

TEST_CASE("a config file with an unknown key or bad JSON is refused") {
    const auto dir = test::make_temp_dir("ecu2mqtt-options");
    const auto file = (dir / "c.json").string();
    std::ofstream(file) << R"({"prots": [1]})";
    CHECK_THROWS_WITH(parse({"--config", file}), Catch::Contains("unknown key \"prots\""));
    std::ofstream(file, std::ios::trunc) << "{ports: 1";
    CHECK_THROWS_WITH(parse({"--config", file}), Catch::Contains("not valid JSON"));
    std::filesystem::remove_all(dir);
}

TEST_CASE("help lists every option with its environment variable") {
    const auto text = help_text();
    for (const char* name :
         {"--listen", "--ports", "--log-level", "--config", "--mqtt-url", "--mqtt-user",
          "--mqtt-password", "--mqtt-client-id", "--base-topic", "--discovery-prefix",
          "--no-discovery", "--publish-raw", "--ecu-timeout", "--state-dir",
          "ECU2MQTT_MQTT_PASSWORD", "ECU2MQTT_PORTS"})
        CHECK_THAT(text, Catch::Contains(name));
}

TEST_CASE("decode takes files") {
    const auto cl = parse({"decode", "a.txt", "b.txt"});
    CHECK(cl.command == Command::Decode);
    CHECK(cl.files == std::vector<std::string>{"a.txt", "b.txt"});
}

TEST_CASE("the README documents every option --help lists") {
    const std::string readme = test::read_file(std::string(TEST_DATA_DIR) + "/../../README.md");
    REQUIRE(!readme.empty());
    const std::string help = help_text();
    std::size_t at = 0;
    int flags = 0;
    while ((at = help.find("\n  --", at)) != std::string::npos) {
        const auto start = at + 3;
        const auto end = help.find_first_of(" \n", start);
        const std::string flag = help.substr(start, end - start);
        INFO(flag);
        CHECK(readme.find("`" + flag) != std::string::npos);
        ++flags;
        at = end;
    }
    CHECK(flags >= 25);
}
