// The real binary refuses bad configuration at start: exit status 2 and a message naming the
// option and the value, whichever way it was given; and a full proxy that would forward to
// itself.
#include "support/mosquitto_broker.hpp"
#include "support/service_process.hpp"
#include "support/test_paths.hpp"

#include <catch2/catch.hpp>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <unistd.h>

using namespace std::chrono_literals;

namespace test_option_errors {
namespace {

struct Run {
    int status;
    std::string output;
};

Run run(std::vector<std::string> args, std::vector<std::string> env = {}) {
    const auto dir = test::make_temp_dir("ecu2mqtt-opts");
    args.insert(args.begin(), ECU2MQTT_BINARY);
    test::ChildProcess p(args, (dir / "out.txt").string(), std::move(env));
    const auto status = p.wait_for(10s);
    Run r{status.value_or(-1), p.output()};
    std::filesystem::remove_all(dir);
    return r;
}

struct BadValue {
    std::string flag, env, key, value;
};

} // namespace

TEST_CASE("the binary exits 2 on a bad value from the command line, environment or config") {
    const auto dir = test::make_temp_dir("ecu2mqtt-opts");
    const auto config = (dir / "config.json").string();
    const std::vector<BadValue> rows{
        {"--ema-resolver", "ECU2MQTT_EMA_RESOLVER", "ema_resolver", "1.1.1.1:"},
        {"--forward-to-ema", "ECU2MQTT_FORWARD_TO_EMA", "forward_to_ema", "ecu..apsystemsema.com"},
        {"--allow-ecus", "ECU2MQTT_ALLOW_ECUS", "allow_ecus", "2160000641"},
        {"--allow-peers", "ECU2MQTT_ALLOW_PEERS", "allow_peers", "192.168.1.0/40"},
        {"--ports", "ECU2MQTT_PORTS", "ports", "8995,8995"},
        {"--mqtt-url", "ECU2MQTT_MQTT_URL", "mqtt_url", "mqtt://broker:99999"},
        {"--listen", "ECU2MQTT_LISTEN", "listen", "my-host"},
        {"--pvoutput-interval", "ECU2MQTT_PVOUTPUT_INTERVAL", "pvoutput_interval", "20"},
        {"--pvoutput-systems", "ECU2MQTT_PVOUTPUT_SYSTEMS", "pvoutput_systems", "216000064136"},
        {"--pvoutput-url", "ECU2MQTT_PVOUTPUT_URL", "pvoutput_url", "pvoutput.org"},
    };
    for (const auto& row : rows) {
        INFO(row.flag << " " << row.value);
        const auto flag = run({row.flag, row.value});
        CHECK(flag.status == 2);
        CHECK_THAT(flag.output, Catch::Contains("ecu2mqtt: " + row.flag + ": ") &&
                                    Catch::Contains("\"" + row.value + "\""));
        const auto inline_form = run({row.flag + "=" + row.value});
        CHECK(inline_form.status == 2);
        CHECK_THAT(inline_form.output, Catch::Contains("ecu2mqtt: " + row.flag + ": ") &&
                                           Catch::Contains("\"" + row.value + "\""));
        const auto env = run({}, {row.env + "=" + row.value});
        CHECK(env.status == 2);
        CHECK_THAT(env.output, Catch::Contains("ecu2mqtt: " + row.env + ": ") &&
                                   Catch::Contains("\"" + row.value + "\""));
        std::ofstream(config, std::ios::trunc) << nlohmann::json{{row.key, row.value}}.dump();
        const auto file = run({"--config=" + config});
        CHECK(file.status == 2);
        CHECK_THAT(file.output,
                   Catch::Contains("ecu2mqtt: \"" + row.key + "\" in the config file: ") &&
                       Catch::Contains("\"" + row.value + "\""));
    }
    const auto unknown = run({"--forward-to-ema", "ecu.apsystemsema.com", "--frobnicate"});
    CHECK(unknown.status == 2);
    CHECK_THAT(unknown.output, Catch::Contains("unknown option \"--frobnicate\""));
    std::filesystem::remove_all(dir);
}

TEST_CASE("full proxy to a name that resolves to this host, without a resolver: refused") {
    const auto dir = test::make_temp_dir("ecu2mqtt-opts");
    const auto r = run({"--forward-to-ema", "localhost", "--listen", "127.0.0.1", "--ports", "0",
                        "--state-dir", (dir / "state").string(), "--mqtt-url",
                        "mqtt://127.0.0.1:" + std::to_string(test::free_port())});
    CHECK(r.status == 2);
    CHECK_THAT(r.output, Catch::Contains("ecu2mqtt: --forward-to-ema: \"localhost\" resolves to"));
    CHECK_THAT(r.output, Catch::Contains("--ema-resolver"));
    CHECK_THAT(r.output, !Catch::Contains("event=ready"));
    std::filesystem::remove_all(dir);
}

TEST_CASE("full proxy to another loopback address than the one listened on starts: no loop") {
    const auto dir = test::make_temp_dir("ecu2mqtt-opts");
    {
        // Listening on 127.0.0.1 only, nothing of ours answers on 127.0.0.2 (same ports).
        test::MosquittoBroker broker;
        test::ServiceProcess service(broker.url(), dir / "state",
                                     {"--forward-to-ema", "127.0.0.2", "--ema-timeout", "1"});
        CHECK_THAT(service.log(), Catch::Contains("event=ready"));
        CHECK_THAT(service.log(), !Catch::Contains("address ecu2mqtt listens on"));
    }
    // The address listened on itself, on the ECU's ports, is a loop.
    const auto r = run({"--forward-to-ema", "127.0.0.1", "--listen", "127.0.0.1", "--ports",
                        std::to_string(test::free_port()), "--state-dir", (dir / "state2").string(),
                        "--mqtt-url", "mqtt://127.0.0.1:" + std::to_string(test::free_port())});
    CHECK(r.status == 2);
    CHECK_THAT(r.output, Catch::Contains("ecu2mqtt: --forward-to-ema: \"127.0.0.1\" is an address "
                                         "ecu2mqtt listens on (--listen 127.0.0.1)"));
    std::filesystem::remove_all(dir);
}

TEST_CASE("full proxy with a resolver that never answers: the fake reply within --ema-timeout") {
    const auto [silent, silent_port] = test::bound_loopback_socket(SOCK_DGRAM); // answers none
    const auto dir = test::make_temp_dir("ecu2mqtt-opts");
    {
        test::MosquittoBroker broker;
        test::ServiceProcess service(broker.url(), dir / "state",
                                     {"--forward-to-ema", "ecu.apsystemsema.com", "--ema-timeout",
                                      "1", "--ema-resolver",
                                      "127.0.0.1:" + std::to_string(silent_port)});
        const auto start = std::chrono::steady_clock::now();
        CHECK(test::upload(service.port(), test::captured_upload()) == "10120240206111714");
        const auto waited = std::chrono::steady_clock::now() - start;
        CHECK(waited >= 900ms);
        CHECK(waited < 1800ms);
        CHECK(service.process().wait_for_output("no answer from the resolver", 2s));
        CHECK_THAT(service.log(), Catch::Contains("event=ema_no_reply ecu=216000064136"));
    }
    ::close(silent);
    std::filesystem::remove_all(dir);
}

TEST_CASE("a PVOutput key without a system exits 2 naming both options, never the key") {
    const auto r = run({"--pvoutput-api-key", "topsecret0123456789"});
    CHECK(r.status == 2);
    CHECK_THAT(r.output, Catch::Contains("ecu2mqtt: --pvoutput-api-key: ") &&
                             Catch::Contains("--pvoutput-system-id"));
    CHECK_THAT(r.output, !Catch::Contains("topsecret0123456789"));
}

} // namespace test_option_errors
