// `ecu2mqtt --addon` as the Supervisor starts it: options file, SUPERVISOR_TOKEN, and a fake
// Supervisor on loopback that hands out the credentials of a real, password-protected Mosquitto.
#include "support/loopback_server.hpp"
#include "support/mqtt_probe.hpp"
#include "support/service_process.hpp"
#include "support/test_paths.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <netinet/in.h>
#include <sys/socket.h>

using namespace std::chrono_literals;

namespace {

// Answers every GET with `body`, recording the requests it saw.
class FakeSupervisor {
  public:
    explicit FakeSupervisor(std::string body)
        : server_(
              "\r\n\r\n",
              [body = std::move(body)](const std::string&) -> std::optional<std::string> {
                  return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
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
