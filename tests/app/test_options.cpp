#include "ecu2mqtt/app/options.hpp"
#include "ecu2mqtt/net/ecu_poller.hpp"
#include "support/mosquitto_broker.hpp"
#include "support/test_paths.hpp"

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

using namespace ecu2mqtt;

namespace test_options {
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
    CHECK(o.poll_ecus.empty()); // polling is off
    CHECK(o.poll_interval == std::chrono::seconds(300));
    CHECK(o.poll_timeout == std::chrono::seconds(10));
}

TEST_CASE("polling options: auto or addresses, interval and timeout") {
    const auto o =
        parse({"--poll-ecus", "auto", "--poll-interval", "60", "--poll-timeout", "5"}).options;
    CHECK(o.poll_ecus == "auto");
    CHECK(o.poll_interval == std::chrono::seconds(60));
    CHECK(o.poll_timeout == std::chrono::seconds(5));
    CHECK(parse({}, {{"ECU2MQTT_POLL_ECUS", "192.168.1.20,192.168.1.21:8899"}}).options.poll_ecus ==
          "192.168.1.20,192.168.1.21:8899");
    CHECK(parse({"--poll-ecus", "off"}).options.poll_ecus.empty());
}

TEST_CASE("polled ECU addresses: items trimmed, one spelling, no duplicates or group addresses") {
    const auto config = parse_poll_ecus("192.168.1.20, ::ffff:192.168.1.21 ,[2001:DB8::5]:9000");
    REQUIRE(config.targets.size() == 3);
    CHECK(config.targets[0].host == "192.168.1.20");
    CHECK(config.targets[1].host == "192.168.1.21");
    CHECK(config.targets[2].host == "2001:db8::5");
    CHECK(config.targets[2].port == 9000);
    CHECK_THROWS_WITH(parse({"--poll-ecus", "192.168.1.20,192.168.1.20:8899"}),
                      Catch::Contains("twice"));
    for (const auto* address : {"0.0.0.0", "224.0.0.1", "::"})
        CHECK_THROWS_WITH(parse({"--poll-ecus", address}), Catch::Contains("--poll-ecus"));
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

TEST_CASE("a broker password written into --mqtt-url is refused without being repeated") {
    try {
        parse({"--mqtt-url", "mqtt://alice:s3cret@broker:1883"});
        FAIL("accepted");
    } catch (const OptionError& e) {
        const std::string message = e.what();
        CHECK(message.find("s3cret") == std::string::npos);
        CHECK(message.find("alice") == std::string::npos);
        CHECK(message.find("--mqtt-password") != std::string::npos);
        CHECK(message.find("mqtt://***@broker:1883") != std::string::npos);
    }
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

TEST_CASE("the options reference documents every option --help lists") {
    const std::string readme =
        test::read_file(std::string(TEST_DATA_DIR) + "/../../docs/options.md");
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

namespace {

// One bad value of one option, and the part of it the message must quote.
struct BadValue {
    std::string_view flag, env, key;
    std::string value;
    std::string quoted;
};

const std::vector<BadValue>& bad_values() {
    static const std::vector<BadValue> rows{
        {"--listen", "ECU2MQTT_LISTEN", "listen", "localhost", "localhost"},
        {"--listen", "ECU2MQTT_LISTEN", "listen", "192.168.1.300", "192.168.1.300"},
        {"--ports", "ECU2MQTT_PORTS", "ports", "8995,,8996", "8995,,8996"},
        {"--ports", "ECU2MQTT_PORTS", "ports", "8995,", "8995,"},
        {"--ports", "ECU2MQTT_PORTS", "ports", "8995, 8995", "8995, 8995"},
        {"--ports", "ECU2MQTT_PORTS", "ports", "65536", "65536"},
        {"--ports", "ECU2MQTT_PORTS", "ports", "-1", "-1"},
        {"--max-message-bytes", "ECU2MQTT_MAX_MESSAGE_BYTES", "max_message_bytes", "64k", "64k"},
        {"--max-message-bytes", "ECU2MQTT_MAX_MESSAGE_BYTES", "max_message_bytes", "0", "0"},
        {"--idle-timeout", "ECU2MQTT_IDLE_TIMEOUT", "idle_timeout", "1.5", "1.5"},
        {"--max-connections", "ECU2MQTT_MAX_CONNECTIONS", "max_connections", "0", "0"},
        {"--max-connection-age", "ECU2MQTT_MAX_CONNECTION_AGE", "max_connection_age", "2m", "2m"},
        {"--allow-peers", "ECU2MQTT_ALLOW_PEERS", "allow_peers", "192.168.1.0/33",
         "192.168.1.0/33"},
        {"--allow-peers", "ECU2MQTT_ALLOW_PEERS", "allow_peers", "10.0.0.0/", "10.0.0.0/"},
        {"--allow-peers", "ECU2MQTT_ALLOW_PEERS", "allow_peers", "::/129", "::/129"},
        {"--allow-peers", "ECU2MQTT_ALLOW_PEERS", "allow_peers", "10.0.0.1, lan", "lan"},
        {"--allow-peers", "ECU2MQTT_ALLOW_PEERS", "allow_peers", "10.0.0.1,,10.0.0.2",
         "10.0.0.1,,10.0.0.2"},
        {"--allow-ecus", "ECU2MQTT_ALLOW_ECUS", "allow_ecus", "216000064136, 12345", "12345"},
        {"--allow-ecus", "ECU2MQTT_ALLOW_ECUS", "allow_ecus", "21600006413x", "21600006413x"},
        {"--allow-ecus", "ECU2MQTT_ALLOW_ECUS", "allow_ecus", "2160000641360", "2160000641360"},
        {"--log-level", "ECU2MQTT_LOG_LEVEL", "log_level", "loud", "loud"},
        {"--mqtt-url", "ECU2MQTT_MQTT_URL", "mqtt_url", "http://broker", "http://broker"},
        {"--mqtt-url", "ECU2MQTT_MQTT_URL", "mqtt_url", "mqtt://", "mqtt://"},
        {"--mqtt-url", "ECU2MQTT_MQTT_URL", "mqtt_url", "mqtt://broker:", "mqtt://broker:"},
        {"--mqtt-url", "ECU2MQTT_MQTT_URL", "mqtt_url", "mqtt://broker:0", "mqtt://broker:0"},
        {"--mqtt-url", "ECU2MQTT_MQTT_URL", "mqtt_url", "mqtts://broker:70000",
         "mqtts://broker:70000"},
        {"--mqtt-url", "ECU2MQTT_MQTT_URL", "mqtt_url", "mqtt://bro ker", "mqtt://bro ker"},
        {"--mqtt-url", "ECU2MQTT_MQTT_URL", "mqtt_url", "mqtt://broker/ecu", "mqtt://broker/ecu"},
        {"--mqtt-client-id", "ECU2MQTT_MQTT_CLIENT_ID", "mqtt_client_id", "", "\"\""},
        {"--base-topic", "ECU2MQTT_BASE_TOPIC", "base_topic", "solar/#", "solar/#"},
        {"--discovery-prefix", "ECU2MQTT_DISCOVERY_PREFIX", "discovery_prefix", "home+", "home+"},
        {"--ecu-timeout", "ECU2MQTT_ECU_TIMEOUT", "ecu_timeout", "0", "0"},
        {"--poll-ecus", "ECU2MQTT_POLL_ECUS", "poll_ecus", "ecu.local", "ecu.local"},
        {"--poll-ecus", "ECU2MQTT_POLL_ECUS", "poll_ecus", "192.168.1.20:0", "192.168.1.20:0"},
        {"--poll-interval", "ECU2MQTT_POLL_INTERVAL", "poll_interval", "59", "59"},
        {"--poll-timeout", "ECU2MQTT_POLL_TIMEOUT", "poll_timeout", "0", "0"},
        {"--spool-max-mb", "ECU2MQTT_SPOOL_MAX_MB", "spool_max_mb", "0", "0"},
        {"--history-days", "ECU2MQTT_HISTORY_DAYS", "history_days", "0", "0"},
        {"--history-days", "ECU2MQTT_HISTORY_DAYS", "history_days", "4OO", "4OO"},
        {"--history-days", "ECU2MQTT_HISTORY_DAYS", "history_days", "36501", "36501"},
        {"--forward-to-ema", "ECU2MQTT_FORWARD_TO_EMA", "forward_to_ema",
         "ecu.apsystemsema.com:", "ecu.apsystemsema.com:"},
        {"--forward-to-ema", "ECU2MQTT_FORWARD_TO_EMA", "forward_to_ema", "ecu.apsystemsema.com:0",
         "ecu.apsystemsema.com:0"},
        {"--forward-to-ema", "ECU2MQTT_FORWARD_TO_EMA", "forward_to_ema", "ecu..apsystemsema.com",
         "ecu..apsystemsema.com"},
        {"--forward-to-ema", "ECU2MQTT_FORWARD_TO_EMA", "forward_to_ema", "ecu.apsystemsema.com..",
         "ecu.apsystemsema.com.."},
        {"--forward-to-ema", "ECU2MQTT_FORWARD_TO_EMA", "forward_to_ema", "ema_host:8995",
         "ema_host:8995"},
        {"--forward-to-ema", "ECU2MQTT_FORWARD_TO_EMA", "forward_to_ema", "3.120.7.300",
         "3.120.7.300"},
        {"--forward-to-ema", "ECU2MQTT_FORWARD_TO_EMA", "forward_to_ema", "", "\"\""},
        {"--ema-resolver", "ECU2MQTT_EMA_RESOLVER", "ema_resolver", "1.1.1.1:", "1.1.1.1:"},
        {"--ema-resolver", "ECU2MQTT_EMA_RESOLVER", "ema_resolver", "1.1.1.1:0", "1.1.1.1:0"},
        {"--ema-resolver", "ECU2MQTT_EMA_RESOLVER", "ema_resolver", "1.1.1.1:65536",
         "1.1.1.1:65536"},
        {"--ema-resolver", "ECU2MQTT_EMA_RESOLVER", "ema_resolver", "dns.google", "dns.google"},
        {"--ema-resolver", "ECU2MQTT_EMA_RESOLVER", "ema_resolver", "1.1.1", "1.1.1"},
        {"--ema-timeout", "ECU2MQTT_EMA_TIMEOUT", "ema_timeout", "0", "0"},
        {"--ema-timeout", "ECU2MQTT_EMA_TIMEOUT", "ema_timeout", "5s", "5s"},
        {"--ema-timeout", "ECU2MQTT_EMA_TIMEOUT", "ema_timeout", "61", "61"},
        {"--state-dir", "ECU2MQTT_STATE_DIR", "state_dir", "", "\"\""},
        {"--max-ecus", "ECU2MQTT_MAX_ECUS", "max_ecus", "0", "0"},
        {"--max-ecus", "ECU2MQTT_MAX_ECUS", "max_ecus", "16x", "16x"},
        {"--max-inverters-per-ecu", "ECU2MQTT_MAX_INVERTERS_PER_ECU", "max_inverters_per_ecu", "0",
         "0"},
        {"--forget-inverters-after", "ECU2MQTT_FORGET_INVERTERS_AFTER", "forget_inverters_after",
         "30d", "30d"},
        {"--forget-inverters-after", "ECU2MQTT_FORGET_INVERTERS_AFTER", "forget_inverters_after",
         "0", "0"},
        {"--gap-expiry", "ECU2MQTT_GAP_EXPIRY", "gap_expiry", "48h", "48h"},
        {"--gap-expiry", "ECU2MQTT_GAP_EXPIRY", "gap_expiry", "0", "0"},
        {"--record-max-mb", "ECU2MQTT_RECORD_MAX_MB", "record_max_mb", "0", "0"},
        {"--pvoutput-system-id", "ECU2MQTT_PVOUTPUT_SYSTEM_ID", "pvoutput_system_id", "sys1",
         "sys1"},
        {"--pvoutput-systems", "ECU2MQTT_PVOUTPUT_SYSTEMS", "pvoutput_systems", "2160000641=12",
         "2160000641=12"},
        {"--pvoutput-systems", "ECU2MQTT_PVOUTPUT_SYSTEMS", "pvoutput_systems",
         "216000064136=1,216000064136=2", "216000064136=1,216000064136=2"},
        {"--pvoutput-interval", "ECU2MQTT_PVOUTPUT_INTERVAL", "pvoutput_interval", "7", "7"},
        {"--pvoutput-url", "ECU2MQTT_PVOUTPUT_URL", "pvoutput_url", "ftp://pvoutput.org",
         "ftp://pvoutput.org"},
        {"--pvoutput-url", "ECU2MQTT_PVOUTPUT_URL", "pvoutput_url", "https://k@pvoutput.org",
         "https://k@pvoutput.org"},
        {"--http-listen", "ECU2MQTT_HTTP_LISTEN", "http_listen", "127.0.0.1", "127.0.0.1"},
        {"--http-listen", "ECU2MQTT_HTTP_LISTEN", "http_listen", "localhost:8099", "localhost"},
        {"--http-listen", "ECU2MQTT_HTTP_LISTEN", "http_listen", "0.0.0.0:80990", "80990"},
        {"--http-allow-peers", "ECU2MQTT_HTTP_ALLOW_PEERS", "http_allow_peers", "lan", "lan"},
        {"--http-timeout", "ECU2MQTT_HTTP_TIMEOUT", "http_timeout", "0", "0"},
        {"--dns-check-name", "ECU2MQTT_DNS_CHECK_NAME", "dns_check_name", "", "\"\""},
        {"--dns-check-name", "ECU2MQTT_DNS_CHECK_NAME", "dns_check_name", "ecu apsystemsema",
         "ecu apsystemsema"},
        {"--advertised-address", "ECU2MQTT_ADVERTISED_ADDRESS", "advertised_address", "ecu.local",
         "ecu.local"},
        {"--advertised-address", "ECU2MQTT_ADVERTISED_ADDRESS", "advertised_address",
         "192.168.1.10,300.1.1.1", "300.1.1.1"},
        {"--advertised-address", "ECU2MQTT_ADVERTISED_ADDRESS", "advertised_address", "0.0.0.0",
         "0.0.0.0"},
        {"--advertised-address", "ECU2MQTT_ADVERTISED_ADDRESS", "advertised_address", "224.0.0.1",
         "224.0.0.1"},
        {"--mqtt-ca-file", "ECU2MQTT_MQTT_CA_FILE", "mqtt_ca_file", "/nonexistent/ca.pem",
         "/nonexistent/ca.pem"},
    };
    return rows;
}

// The message OptionError carries for `row` given through `source`, or "" when none was thrown.
std::string error_for(const BadValue& row, std::string_view source,
                      const std::filesystem::path& dir) {
    try {
        if (source == "flag")
            parse({std::string(row.flag), row.value});
        else if (source == "flag=value")
            parse({std::string(row.flag) + "=" + row.value});
        else if (source == "env")
            parse({}, {{std::string(row.env), row.value}});
        else {
            const auto file = (dir / "config.json").string();
            std::ofstream(file, std::ios::trunc)
                << nlohmann::json{{std::string(row.key), row.value}}.dump();
            parse({"--config", file});
        }
    } catch (const OptionError& e) {
        return e.what();
    }
    return "";
}

} // namespace

TEST_CASE("every bad value is refused from every source, naming the option and the value") {
    const auto dir = test::make_temp_dir("ecu2mqtt-options");
    for (const auto& row : bad_values())
        for (const std::string_view source : {"flag", "flag=value", "env", "config"}) {
            INFO(std::string(row.flag) << " \"" << row.value << "\" from " << source);
            const auto message = error_for(row, source, dir);
            const std::string named = source == "env"      ? std::string(row.env)
                                      : source == "config" ? "\"" + std::string(row.key) + "\""
                                                           : std::string(row.flag);
            CHECK_THAT(message, Catch::StartsWith(named) && Catch::Contains(row.quoted));
        }
    std::filesystem::remove_all(dir);
}

TEST_CASE("flags and booleans: bad values and misuse are refused with their name") {
    CHECK_THROWS_WITH(parse({}, {{"ECU2MQTT_DISCOVERY", "maybe"}}),
                      Catch::Contains("ECU2MQTT_DISCOVERY") && Catch::Contains("maybe"));
    CHECK_THROWS_WITH(parse({"--no-discovery=yes"}),
                      Catch::Contains("--no-discovery takes no value") && Catch::Contains("yes"));
    CHECK_THROWS_WITH(parse({"--ports"}), Catch::Contains("--ports needs a value"));
    CHECK_THROWS_WITH(parse({"--config"}), Catch::Contains("--config needs a value"));
    CHECK_THROWS_WITH(parse({"--config="}), Catch::Contains("--config"));
    CHECK_THROWS_WITH(parse({"--listen", "127.0.0.1", "stray"}),
                      Catch::Contains("unknown option \"stray\""));
    CHECK_THROWS_WITH(parse({"--frobnicate=1"}), Catch::Contains("\"--frobnicate=1\""));
}

TEST_CASE("list items are trimmed, and a whole empty list means none") {
    const auto o = parse({"--allow-ecus", " 216000064136 , 216200000077", "--allow-peers",
                          "10.0.0.0/8,  ::1 ", "--ports", " 9000 , 9001"})
                       .options;
    CHECK(o.allow_ecus == std::vector<std::string>{"216000064136", "216200000077"});
    CHECK(o.allow_peers == std::vector<std::string>{"10.0.0.0/8", "::1"});
    CHECK(o.ports == std::vector<std::uint16_t>{9000, 9001});
    CHECK(parse({"--allow-ecus", ""}).options.allow_ecus.empty());
    CHECK(parse({"--ports", "0,0"}).options.ports == std::vector<std::uint16_t>{0, 0});
}

TEST_CASE("hosts: a trailing dot is dropped, IPv6 in brackets, resolver ports in range") {
    CHECK(parse({"--forward-to-ema", "ecu.apsystemsema.com."}).options.forward_to_ema ==
          "ecu.apsystemsema.com");
    CHECK(parse({"--forward-to-ema=ecu.apsystemsema.com.:8995"}).options.forward_to_ema ==
          "ecu.apsystemsema.com:8995");
    CHECK(parse({"--forward-to-ema", "[2001:db8::1]:8995"}).options.forward_to_ema ==
          "[2001:db8::1]:8995");
    CHECK(parse({"--ema-resolver", "1.1.1.1:5353"}).options.ema_resolver == "1.1.1.1:5353");
    CHECK(parse({"--ema-resolver", "2606:4700:4700::1111"}).options.ema_resolver ==
          "2606:4700:4700::1111");
    CHECK(parse({"--mqtt-url", "mqtts://[::1]:8883/"}).options.mqtt_url == "mqtts://[::1]:8883/");
    CHECK(parse({"--mqtt-url", "mqtt://broker.lan"}).options.mqtt_url == "mqtt://broker.lan");
    CHECK(parse({"--listen", "::"}).options.listen_address == "::");
}

TEST_CASE("a config file given as --config=FILE is read, and a config float is a float") {
    const auto dir = test::make_temp_dir("ecu2mqtt-options");
    const auto file = (dir / "config.json").string();
    std::ofstream(file) << R"({"base_topic": "solar", "ema_timeout": 0.5, "allow_ecus": [
                              " 216000064136"]})";
    const auto o = parse({"--config=" + file}).options;
    CHECK(o.base_topic == "solar");
    CHECK(o.ema_timeout == std::chrono::milliseconds(500));
    CHECK(o.allow_ecus == std::vector<std::string>{"216000064136"});
    std::ofstream(file, std::ios::trunc) << R"({"ports": {"a": 1}})";
    CHECK_THROWS_WITH(parse({"--config=" + file}),
                      Catch::StartsWith("\"ports\" in the config file") &&
                          Catch::Contains("unsupported value"));
    std::filesystem::remove_all(dir);
}

TEST_CASE("replay takes --opt=value too, and refuses bad values by name") {
    const auto cl =
        parse({"replay", "--to=192.168.1.10", "--port=8995", "--speed=60", "day.jsonl"});
    CHECK(cl.command == Command::Replay);
    CHECK(cl.replay.host == "192.168.1.10");
    CHECK(cl.replay.port == 8995);
    CHECK(cl.replay.speed == 60.0);
    CHECK(cl.files == std::vector<std::string>{"day.jsonl"});
    CHECK_THROWS_WITH(parse({"replay", "--port", "0", "f"}),
                      Catch::Contains("--port") && Catch::Contains("\"0\""));
    CHECK_THROWS_WITH(parse({"replay", "--speed=2x", "f"}),
                      Catch::Contains("--speed") && Catch::Contains("\"2x\""));
    CHECK_THROWS_WITH(parse({"replay", "--to", "bad host", "f"}),
                      Catch::Contains("--to") && Catch::Contains("\"bad host\""));
}

TEST_CASE("history takes a state directory, an ECU, an inclusive date range and --curve") {
    const auto cl = parse({"history", "--state-dir", "/var/lib/ecu2mqtt", "--ecu=216000064136",
                           "--from", "2024-06-01", "--to=2024-06-30", "--curve"});
    CHECK(cl.command == Command::History);
    CHECK(cl.options.state_dir == "/var/lib/ecu2mqtt");
    CHECK(cl.history.selection.ecu_id == "216000064136");
    CHECK(cl.history.selection.from == "2024-06-01");
    CHECK(cl.history.selection.to == "2024-06-30");
    CHECK(cl.history.curve);

    // Everything may be left out; the state directory is found as the service finds it.
    const auto all = parse({"history"}, {{"HOME", "/home/pv"}});
    CHECK(all.command == Command::History);
    CHECK(all.history.selection.ecu_id.empty());
    CHECK(all.history.selection.from.empty());
    CHECK(all.history.selection.to.empty());
    CHECK_FALSE(all.history.curve);
    CHECK(all.options.state_dir == "/home/pv/.local/state/ecu2mqtt");
    CHECK(parse({"history"}, {{"ECU2MQTT_STATE_DIR", "/data"}}).options.state_dir == "/data");
    CHECK(parse({"history", "--state-dir", "/srv"}, {{"ECU2MQTT_STATE_DIR", "/data"}})
              .options.state_dir == "/srv");
    CHECK(parse({"history", "--from", "2024-06-01", "--to", "2024-06-01"}).command ==
          Command::History); // one day
    CHECK(parse({"history", "--help"}).command == Command::Help);
}

TEST_CASE("history refuses what it cannot use, naming the option and the value") {
    CHECK_THROWS_WITH(parse({"history", "--from", "2024-6-1"}),
                      Catch::Contains("--from") && Catch::Contains("YYYY-MM-DD") &&
                          Catch::Contains("\"2024-6-1\""));
    CHECK_THROWS_WITH(parse({"history", "--to=2024-02-30"}),
                      Catch::Contains("--to") && Catch::Contains("\"2024-02-30\""));
    CHECK_THROWS_WITH(parse({"history", "--from", "2024-06-02", "--to", "2024-06-01"}),
                      Catch::Contains("--from 2024-06-02 is after --to 2024-06-01"));
    CHECK_THROWS_WITH(parse({"history", "--ecu", "21600006413"}),
                      Catch::Contains("--ecu") && Catch::Contains("12 digits"));
    CHECK_THROWS_WITH(parse({"history", "--curve=yes"}), Catch::Contains("takes no value"));
    CHECK_THROWS_WITH(parse({"history", "--days", "7"}),
                      Catch::Contains("unknown option \"--days\""));
    CHECK_THROWS_WITH(parse({"history", "june.csv"}),
                      Catch::Contains("unexpected argument \"june.csv\""));
    CHECK_THROWS_WITH(parse({"history", "--from"}), Catch::Contains("--from needs a value"));
    CHECK_THROWS_WITH(parse({"history", "--state-dir="}), Catch::Contains("--state-dir"));
}

TEST_CASE("the help describes history and its options") {
    const auto text = help_text();
    for (const char* part : {"ecu2mqtt history", "--ecu ID", "--from DATE", "--to DATE", "--curve",
                             "energy_basis", "previous_day", "counter_reset"})
        CHECK_THAT(text, Catch::Contains(part));
}

} // namespace test_options
