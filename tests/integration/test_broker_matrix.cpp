// The delivery contract (docs/delivery.md) on every broker of the matrix: Mosquitto, Aedes and
// RabbitMQ's MQTT plugin, each started on a free loopback port. Subscribers use exact topic
// filters wherever a retained copy matters: RabbitMQ hands retained messages to nothing else.
#include "support/cutting_proxy.hpp"
#include "support/eventually.hpp"
#include "support/minute_uploads.hpp"
#include "support/mqtt_probe.hpp"
#include "support/restricted_broker.hpp"
#include "support/service_process.hpp"
#include "support/test_broker.hpp"
#include "support/upload_builder.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

using namespace std::chrono_literals;
using nlohmann::json;
using test::BrokerKind;

namespace test_broker_matrix {
namespace {

const std::string kBigEcu = "216000077001";
const std::string kOtherEcu = "216000077002";

std::string inverter_uid(int n) {
    return "8060001" + test::zero_padded(n, 5);
}

std::string config_topic(const std::string& device_key) {
    return "homeassistant/device/ecu2mqtt_" + device_key + "/config";
}

// An ECU with 25 QS1: 26 device configs.
std::string big_upload(const std::string& ecu_id, int minute) {
    test::UploadSpec spec;
    spec.ecu_id = ecu_id;
    spec.timestamp = test::stamp_at_minute(minute);
    for (int i = 0; i < 25; ++i)
        spec.inverters.push_back(test::inverter_with(inverter_uid(i), 4, 50 + minute));
    spec.centiwatts = 25 * 4 * (50 + minute) * 100LL;
    spec.decikwh = 100000 + minute;
    return test::build_upload(spec);
}

std::vector<std::string> big_ecu_config_topics() {
    std::vector<std::string> topics{config_topic(kBigEcu)};
    for (int i = 0; i < 25; ++i)
        topics.push_back(config_topic(inverter_uid(i)));
    return topics;
}

// A probe with one exact subscription per topic: retained copies come on every broker.
std::unique_ptr<test::MqttProbe> exact_probe(const test::TestBroker& broker,
                                             const std::vector<std::string>& topics) {
    auto probe = std::make_unique<test::MqttProbe>(broker.url(), topics.front());
    for (std::size_t i = 1; i < topics.size(); ++i)
        probe->subscribe(topics[i]);
    return probe;
}

void delete_ecu_state(const std::filesystem::path& state_dir, const std::string& ecu_id) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open((state_dir / "ecu2mqtt.db").c_str(), &db) == SQLITE_OK);
    const std::string sql = "DELETE FROM ecu_state WHERE ecu_id = '" + ecu_id + "'";
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
    sqlite3_close(db);
    REQUIRE(rc == SQLITE_OK);
}

std::string state_timestamp(const test::Received& m) {
    return json::parse(m.payload)["timestamp"];
}

// Never backwards: the live states a subscriber saw, in order, never go back in time and their
// lifetime never goes down (an identical state sent again is allowed).
void check_never_backwards(const test::MqttProbe& probe, const std::string& topic) {
    std::string last_time;
    double last_lifetime = 0;
    for (const auto& m : probe.messages()) {
        if (m.topic != topic || m.payload.empty())
            continue;
        const auto state = json::parse(m.payload);
        const std::string time = state["timestamp"];
        INFO(topic << ": " << time << " after " << last_time);
        CHECK(time >= last_time);
        if (state.contains("lifetime_energy_kwh") && state["lifetime_energy_kwh"].is_number()) {
            CHECK(state["lifetime_energy_kwh"].get<double>() >= last_lifetime);
            last_lifetime = state["lifetime_energy_kwh"].get<double>();
        }
        last_time = time;
    }
}

// The README's "remove a device for good": the ECU's stored state deleted while the service is
// stopped, the ECU kept out with --allow-ecus. At the next start every config the service had
// announced of it is cleared, whatever the broker hands back.
void remove_for_good(BrokerKind kind) {
    test::TempDir dir;
    auto broker = test::make_broker(kind);
    const auto state_dir = dir.path / "state";
    const auto configs = big_ecu_config_topics();
    {
        test::ServiceProcess service(broker->url(), state_dir);
        REQUIRE(service.process().wait_for_output("event=mqtt_connected", 10s));
        REQUIRE(test::upload(service.port(), big_upload(kBigEcu, 0)).starts_with("101"));
        auto probe = exact_probe(*broker, configs);
        INFO(service.log());
        REQUIRE(probe->wait_for_count([](const test::Received& m) { return !m.payload.empty(); },
                                      configs.size(), 20s));
        service.process().signal(SIGTERM);
        REQUIRE(service.process().wait_for(10s));
    }
    delete_ecu_state(state_dir, kBigEcu);
    test::MqttProbe watcher(broker->url(), "homeassistant/#"); // sees the clears go out
    test::ServiceProcess service(broker->url(), state_dir, {"--allow-ecus", kOtherEcu});
    const auto is_clear = [](const test::Received& m) {
        return m.payload.empty() && m.topic.ends_with("/config") && !m.retained;
    };
    INFO(service.log());
    CHECK(watcher.wait_for_count(is_clear, configs.size(), 20s));
    // A subscriber arriving afterwards gets no config of the removed ECU: each exact filter is
    // answered, so the broker's answer for the last one comes after the retained copies of all.
    auto late = exact_probe(*broker, configs);
    const auto ghosts = late->count([](const test::Received& m) { return !m.payload.empty(); });
    CHECK(ghosts == 0);
}

// Never stale: a broker restarted without its retained messages (no persistence) has the newest
// state of the ECU and of each inverter again within seconds, with no upload coming.
void broker_restart_without_persistence(BrokerKind kind) {
    test::TempDir dir;
    auto broker = test::make_broker(kind);
    test::ServiceProcess service(broker->url(), dir.path / "state");
    REQUIRE(service.process().wait_for_output("event=mqtt_connected", 10s));
    const std::string ecu_state = "ecu2mqtt/" + kBigEcu + "/state";
    const std::string inverter_state = "ecu2mqtt/" + kBigEcu + "/" + inverter_uid(24) + "/state";
    {
        test::MqttProbe probe(broker->url(), ecu_state);
        for (int m = 0; m <= 2; ++m)
            REQUIRE(test::upload(service.port(), big_upload(kBigEcu, m)).starts_with("101"));
        REQUIRE(probe.wait_for_payload(
            ecu_state,
            [](const std::string& p) { return p.find(test::iso_at_minute(2)) != p.npos; }, 20s));
        check_never_backwards(probe, ecu_state);
    }
    broker->restart_empty();
    auto late = exact_probe(*broker, {ecu_state, inverter_state});
    INFO(service.log());
    const auto newest = [](const std::string& p) {
        return p.find(test::iso_at_minute(2)) != p.npos;
    };
    CHECK(late->wait_for_payload(ecu_state, newest, 30s));
    CHECK(late->wait_for_payload(inverter_state, newest, 10s));
    check_never_backwards(*late, ecu_state);
}

// Killed with SIGKILL between uploads and started again: every answered reading reaches a
// subscriber that stays connected, the live state never goes back, and the newest is retained.
void service_kills(BrokerKind kind) {
    test::TempDir dir;
    auto broker = test::make_broker(kind);
    const auto state_dir = dir.path / "state";
    test::MqttProbe live(broker->url(), test::kCapturedEcuState);
    std::vector<std::string> answered;
    constexpr int kRounds = 4, kPerRound = 3;
    for (int round = 0; round < kRounds; ++round) {
        test::ServiceProcess service(broker->url(), state_dir);
        for (int i = 0; i < kPerRound; ++i) {
            const int minute = round * kPerRound + i;
            if (test::upload(service.port(), test::upload_at_minute(minute)).starts_with("101"))
                answered.push_back(test::iso_at_minute(minute));
        }
        service.process().signal(SIGKILL); // maybe before the broker has any of them
        REQUIRE(service.process().wait_for(5s));
        check_never_backwards(live, test::kCapturedEcuState);
    }
    test::ServiceProcess service(broker->url(), state_dir);
    INFO(service.log());
    const auto seen = [&](const std::string& iso) {
        return live.count([&](const test::Received& m) {
            return m.topic == test::kCapturedEcuState && !m.payload.empty() &&
                   state_timestamp(m) == iso;
        }) > 0;
    };
    CHECK(
        test::eventually([&] { return std::all_of(answered.begin(), answered.end(), seen); }, 30s));
    check_never_backwards(live, test::kCapturedEcuState);
    test::MqttProbe late(broker->url(), test::kCapturedEcuState);
    const auto retained = late.wait_for_topic(test::kCapturedEcuState, 10s);
    REQUIRE(retained);
    CHECK(state_timestamp(*retained) == answered.back());
}

// Acknowledgements lost with the connection: the broker took readings 1..3, the service never
// heard so. After the reconnect, whatever the broker answers (Aedes its receipt late, RabbitMQ
// no states on wildcards), a subscriber that stayed connected never sees the state go back,
// and every answered reading reaches it on the state or the history topic.
struct Credentials {
    std::string service_user, reader_user, password;
};

void lost_acknowledgements(const std::string& broker_url, const Credentials& credentials = {}) {
    test::TempDir dir;
    const auto broker_port =
        static_cast<std::uint16_t>(std::stoi(broker_url.substr(broker_url.rfind(':') + 1)));
    test::CuttingProxy network(broker_port);
    test::MqttProbe live(broker_url, test::kCapturedEcuState, "probe", "", credentials.reader_user,
                         credentials.password);
    live.subscribe("ecu2mqtt/216000064136/history");
    std::vector<std::string> args;
    if (!credentials.service_user.empty())
        args = {"--mqtt-user", credentials.service_user, "--mqtt-password", credentials.password};
    test::ServiceProcess service(network.url(), dir.path / "state", args);
    REQUIRE(service.process().wait_for_output("event=mqtt_connected", 10s));
    REQUIRE(test::upload(service.port(), test::upload_at_minute(0)).starts_with("101"));
    REQUIRE(live.wait_for_count(test::is_live_state, 1, 10s));
    std::this_thread::sleep_for(500ms); // its acknowledgements are back

    network.drop_from_broker(true);
    for (int m = 1; m <= 3; ++m)
        REQUIRE(test::upload(service.port(), test::upload_at_minute(m)).starts_with("101"));
    REQUIRE(live.wait_for_count(test::is_live_state, 4, 10s));
    network.cut();
    network.drop_from_broker(false);
    REQUIRE(test::upload(service.port(), test::upload_at_minute(4)).starts_with("101"));
    INFO(service.log());
    REQUIRE(live.wait_for_payload(
        test::kCapturedEcuState,
        [](const std::string& p) { return p.find(test::iso_at_minute(4)) != p.npos; }, 30s));
    check_never_backwards(live, test::kCapturedEcuState);
    for (int m = 0; m <= 4; ++m)
        CHECK(live.count([&](const test::Received& r) {
            return !r.payload.empty() && state_timestamp(r) == test::iso_at_minute(m);
        }) > 0);
}

} // namespace

TEST_CASE("broker matrix, mosquitto: acknowledgements lost with the connection never make the "
          "state go back",
          "[broker-matrix][mosquitto]") {
    const auto broker = test::make_broker(BrokerKind::Mosquitto);
    lost_acknowledgements(broker->url());
}
TEST_CASE("broker matrix, aedes: acknowledgements lost with the connection never make the state "
          "go back",
          "[broker-matrix][aedes]") {
    const auto broker = test::make_broker(BrokerKind::Aedes);
    lost_acknowledgements(broker->url());
}
TEST_CASE("broker matrix, rabbitmq: acknowledgements lost with the connection never make the "
          "state go back",
          "[broker-matrix][rabbitmq]") {
    const auto broker = test::make_broker(BrokerKind::RabbitMq);
    lost_acknowledgements(broker->url());
}

TEST_CASE("broker matrix, mosquitto: a device removed for good leaves no config retained",
          "[broker-matrix][mosquitto]") {
    remove_for_good(BrokerKind::Mosquitto);
}
TEST_CASE("broker matrix, aedes: a device removed for good leaves no config retained",
          "[broker-matrix][aedes]") {
    remove_for_good(BrokerKind::Aedes);
}
TEST_CASE("broker matrix, rabbitmq: a device removed for good leaves no config retained",
          "[broker-matrix][rabbitmq]") {
    remove_for_good(BrokerKind::RabbitMq);
}

TEST_CASE("broker matrix, mosquitto: a broker restarted without persistence has the newest "
          "states again",
          "[broker-matrix][mosquitto]") {
    broker_restart_without_persistence(BrokerKind::Mosquitto);
}
TEST_CASE("broker matrix, aedes: a broker restarted without persistence has the newest states "
          "again",
          "[broker-matrix][aedes]") {
    broker_restart_without_persistence(BrokerKind::Aedes);
}
TEST_CASE("broker matrix, rabbitmq: a broker restarted without persistence has the newest "
          "states again",
          "[broker-matrix][rabbitmq]") {
    broker_restart_without_persistence(BrokerKind::RabbitMq);
}

TEST_CASE("broker matrix, mosquitto: service kills lose nothing and never go back",
          "[broker-matrix][mosquitto]") {
    service_kills(BrokerKind::Mosquitto);
}
TEST_CASE("broker matrix, aedes: service kills lose nothing and never go back",
          "[broker-matrix][aedes]") {
    service_kills(BrokerKind::Aedes);
}
TEST_CASE("broker matrix, rabbitmq: service kills lose nothing and never go back",
          "[broker-matrix][rabbitmq]") {
    service_kills(BrokerKind::RabbitMq);
}

// A broker that never hands our own retained messages back (its ACL lets the service write its
// topics, not read them: Mosquitto's acl_file delivers nothing, silently), as RabbitMQ does for
// wildcard subscriptions: nothing read back may be needed to keep the state from going back.
TEST_CASE("broker matrix, mosquitto denying read-back: acknowledgements lost with the "
          "connection never make the state go back",
          "[broker-matrix][mosquitto]") {
    test::RestrictedBroker broker(test::RestrictedBroker::Denial::Silent);
    lost_acknowledgements(broker.url(),
                          {test::RestrictedBroker::kServiceUser,
                           test::RestrictedBroker::kReaderUser, test::RestrictedBroker::kPassword});
}

} // namespace test_broker_matrix
