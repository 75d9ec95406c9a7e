// `ecu2mqtt --addon` as the Supervisor starts it: options file, SUPERVISOR_TOKEN, and a fake
// Supervisor on loopback that hands out the credentials of a real, password-protected Mosquitto.
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
    explicit FakeSupervisor(std::string body) : body_(std::move(body)) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        int on = 1;
        ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        socklen_t len = sizeof addr;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
        port_ = ntohs(addr.sin_port);
        ::listen(fd_, 4);
        thread_ = std::thread([this] { serve(); });
    }
    ~FakeSupervisor() {
        stopping_ = true;
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
        thread_.join();
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    std::string requests() {
        std::lock_guard lock(mutex_);
        return requests_;
    }

  private:
    void serve() {
        while (!stopping_) {
            const int client = ::accept(fd_, nullptr, nullptr);
            if (client < 0)
                return;
            std::string request;
            char buf[1024];
            while (request.find("\r\n\r\n") == std::string::npos) {
                const auto n = ::recv(client, buf, sizeof buf, 0);
                if (n <= 0)
                    break;
                request.append(buf, static_cast<std::size_t>(n));
            }
            {
                std::lock_guard lock(mutex_);
                requests_ += request;
            }
            const std::string response =
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                std::to_string(body_.size()) + "\r\nConnection: close\r\n\r\n" + body_;
            ::send(client, response.data(), response.size(), MSG_NOSIGNAL);
            ::close(client);
        }
    }

    std::string body_;
    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stopping_{false};
    std::mutex mutex_;
    std::string requests_;
    std::thread thread_;
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
         "ECU2MQTT_PORTS=" + std::to_string(port), "TZ=UTC"});
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
    CHECK(std::filesystem::exists(dir / "data" / "ecu-216000064136.json")); // state in /data
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
