// `ecu2mqtt --addon` as the Supervisor starts it: options file, SUPERVISOR_TOKEN, and a fake
// Supervisor on loopback that hands out the credentials of a real, password-protected Mosquitto.
#include "support/http_client.hpp"
#include "support/loopback_server.hpp"
#include "support/mqtt_probe.hpp"
#include "support/service_process.hpp"
#include "support/test_paths.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <thread>

using namespace std::chrono_literals;

namespace test_addon_integration {
namespace {

// Answers GET /services/mqtt with `mqtt_body` and GET /network/info with `network_body` (403
// when empty, as the Supervisor does without `hassio_api`), recording the requests it saw.
class FakeSupervisor {
  public:
    explicit FakeSupervisor(std::string mqtt_body, std::string network_body = "")
        : server_("\r\n\r\n",
                  [mqtt_body = std::move(mqtt_body), network_body = std::move(network_body)](
                      const std::string& request) -> std::optional<std::string> {
                      const bool network = request.starts_with("GET /network/info ");
                      const auto& body = network ? network_body : mqtt_body;
                      if (body.empty())
                          return "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n"
                                 "Connection: close\r\n\r\n";
                      return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             "Content-Length: " +
                             std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
                  }) {}
    std::string url() const { return "http://127.0.0.1:" + std::to_string(server_.port()); }
    std::string requests() { return server_.received(); }

  private:
    test::LoopbackServer server_;
};

} // namespace

TEST_CASE("the add-on takes its broker from the Supervisor and publishes with its credentials") {
    test::MosquittoBroker broker("addons", "from-supervisor");
    FakeSupervisor supervisor(
        R"({"result":"ok","data":{"addon":"core_mosquitto","host":"127.0.0.1","port":")" +
        std::to_string(broker.port()) +
        R"(","ssl":false,"protocol":"3.1.1","username":"addons","password":"from-supervisor"}})");
    const auto dir = test::make_temp_dir("ecu2mqtt-addon");
    std::ofstream(dir / "options.json")
        << R"({"log_level":"debug","backfill":true,"ecu_timeout":900,
        "publish_raw":false,"discovery":true,"allow_peers":[],"allow_ecus":[],"block_firmware":true})";
    const auto port = test::free_port();
    test::ChildProcess addon(
        {ECU2MQTT_BINARY, "--addon"}, (dir / "addon.log").string(),
        {"SUPERVISOR_TOKEN=token-123", "ECU2MQTT_SUPERVISOR_URL=" + supervisor.url(),
         "ECU2MQTT_ADDON_OPTIONS=" + (dir / "options.json").string(),
         "ECU2MQTT_STATE_DIR=" + (dir / "data").string(), "ECU2MQTT_LISTEN=127.0.0.1",
         "ECU2MQTT_PORTS=" + std::to_string(port),
         "ECU2MQTT_HTTP_LISTEN=127.0.0.1:" + std::to_string(test::free_port()), "TZ=UTC"});
    REQUIRE(addon.wait_for_output("event=mqtt_connected", 10s));
    CHECK_THAT(supervisor.requests(), Catch::Contains("GET /services/mqtt HTTP/1.0"));
    CHECK_THAT(supervisor.requests(), Catch::Contains("Authorization: Bearer token-123"));
    CHECK_THAT(addon.output(), Catch::Contains("broker from the Supervisor: 127.0.0.1:" +
                                               std::to_string(broker.port()) + " as addons"));
    CHECK(addon.output().find("from-supervisor") ==
          std::string::npos); // the password is not logged

    test::MqttProbe probe(broker.url(), "ecu2mqtt/216000064136/state", "probe", {}, broker.user(),
                          broker.password());
    REQUIRE(test::upload(port, test::captured_upload()) == "10120240206111714");
    CHECK(probe.wait_for_topic("ecu2mqtt/216000064136/state"));
    CHECK(std::filesystem::exists(dir / "data" / "ecu2mqtt.db")); // state in /data
    addon.signal(SIGTERM);
    CHECK(addon.wait_for(2s) == 0);
    std::filesystem::remove_all(dir);
}

TEST_CASE("the add-on without a Supervisor token or with bad options says why and stops") {
    const auto dir = test::make_temp_dir("ecu2mqtt-addon");
    std::ofstream(dir / "options.json") << R"({"log_level":"info"})";
    {
        test::ChildProcess addon(
            {ECU2MQTT_BINARY, "--addon"}, (dir / "out.log").string(),
            {"ECU2MQTT_ADDON_OPTIONS=" + (dir / "options.json").string(), "SUPERVISOR_TOKEN="});
        CHECK(addon.wait_for(5s) == 2);
        CHECK_THAT(addon.output(), Catch::Contains("no SUPERVISOR_TOKEN"));
    }
    std::ofstream(dir / "options.json", std::ios::trunc)
        << R"({"log_level":"loud","mqtt_url":"mqtt://127.0.0.1:1"})";
    {
        test::ChildProcess addon({ECU2MQTT_BINARY, "--addon"}, (dir / "out.log").string(),
                                 {"ECU2MQTT_ADDON_OPTIONS=" + (dir / "options.json").string()});
        CHECK(addon.wait_for(5s) == 2);
        CHECK_THAT(addon.output(), Catch::Contains("--log-level"));
    }
    std::filesystem::remove_all(dir);
}

namespace {

// The DNS verdict of an add-on whose ECU port listens on 127.0.0.2 alone, so that "localhost"
// (127.0.0.1) is an address of its own only when the Supervisor names it as the host's.
std::string addon_dns_verdict(const std::string& network_body, std::string& log) {
    test::MosquittoBroker broker;
    FakeSupervisor supervisor(R"({"result":"ok","data":{"host":"127.0.0.1","port":")" +
                                  std::to_string(broker.port()) + R"(","ssl":false}})",
                              network_body);
    const auto dir = test::make_temp_dir("ecu2mqtt-addon");
    std::ofstream(dir / "options.json") << R"({"log_level":"info","advertised_address":[]})";
    const auto http_port = test::free_port();
    test::ChildProcess addon(
        {ECU2MQTT_BINARY, "--addon"}, (dir / "addon.log").string(),
        {"SUPERVISOR_TOKEN=token-123", "ECU2MQTT_SUPERVISOR_URL=" + supervisor.url(),
         "ECU2MQTT_ADDON_OPTIONS=" + (dir / "options.json").string(),
         "ECU2MQTT_STATE_DIR=" + (dir / "data").string(), "ECU2MQTT_LISTEN=127.0.0.2",
         "ECU2MQTT_PORTS=" + std::to_string(test::free_port()),
         "ECU2MQTT_HTTP_LISTEN=127.0.0.1:" + std::to_string(http_port),
         "ECU2MQTT_HTTP_ALLOW_PEERS=127.0.0.1", "ECU2MQTT_DNS_CHECK_NAME=localhost", "TZ=UTC"});
    REQUIRE(addon.wait_for_output("event=ready", 10s));
    std::string verdict;
    for (int attempt = 0; attempt < 100 && verdict.empty(); ++attempt) {
        const auto status = nlohmann::json::parse(test::http_get(http_port, "/api/status").body);
        if (status["dns"]["checked"] == true)
            verdict = status["dns"]["verdict"].get<std::string>();
        else
            std::this_thread::sleep_for(100ms);
    }
    CHECK_THAT(supervisor.requests(), Catch::Contains("GET /network/info HTTP/1.0"));
    log = addon.output();
    addon.signal(SIGTERM);
    CHECK(addon.wait_for(5s) == 0);
    std::filesystem::remove_all(dir);
    return verdict;
}

} // namespace

TEST_CASE("the add-on asks the Supervisor for the host's addresses for its DNS check") {
    std::string log;
    CHECK(addon_dns_verdict(R"({"result":"ok","data":{"interfaces":[{"interface":"lo",
        "ipv4":{"address":["127.0.0.1/8"]},"ipv6":null}]}})",
                            log) == "ok");
    CHECK_THAT(log, Catch::Contains("host addresses from the Supervisor: 127.0.0.1"));

    // Refused (no hassio_api): the add-on runs on, and its DNS line says it cannot tell.
    CHECK(addon_dns_verdict("", log) == "unknown");
    CHECK_THAT(log, Catch::Contains("the DNS check cannot know the host's addresses"));
    CHECK_THAT(log, Catch::Contains("403"));
}

} // namespace test_addon_integration
