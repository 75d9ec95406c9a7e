// A broker that loses what it had (retained messages in a restart, acknowledgements with a
// connection, its newest states in a crash) or answers slowly, and a client that plants a
// receipt: with the real binary, a real Mosquitto and real sockets.
#include "support/cutting_proxy.hpp"
#include "support/minute_uploads.hpp"
#include "support/mqtt_probe.hpp"
#include "support/service_process.hpp"
#include "support/test_paths.hpp"
#include "support/upload_builder.hpp"

#include <catch2/catch.hpp>
#include <map>
#include <nlohmann/json.hpp>

using namespace std::chrono_literals;
using nlohmann::json;

namespace test_broker_loss {
namespace {

const std::string kEcu = "216000064136";
const std::string& kEcuState = test::kCapturedEcuState;
const std::string kReceipt = "ecu2mqtt/bridge/delivered";

using test::is_live_state;
using test::reply_for_minute;
using test::state_timestamps;
using test::upload_at_minute;

std::string stamp(int minute) {
    return test::stamp_at_minute(minute);
}
std::string iso(int minute) {
    return test::iso_at_minute(minute);
}
std::vector<std::string> minutes(int from, int to) {
    return test::iso_minutes(from, to);
}

std::string inverter_uid(int n) {
    return "8060000" + test::zero_padded(n, 5);
}

// One ECU with 25 QS1: a reading is 25 inverter states + the ECU state + the receipt = 27.
std::string big_upload(int minute) {
    test::UploadSpec spec;
    spec.ecu_id = kEcu;
    spec.timestamp = stamp(minute);
    for (int i = 0; i < 25; ++i)
        spec.inverters.push_back(test::inverter_with(inverter_uid(i), 4, 50 + minute));
    spec.centiwatts = 25 * 4 * (50 + minute) * 100LL;
    spec.decikwh = 100000 + minute;
    return test::build_upload(spec);
}

using test::TempDir;

std::size_t occurrences(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1))
        ++n;
    return n;
}

bool wait_log_count(test::ServiceProcess& service, const std::string& what, std::size_t n,
                    std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
        if (occurrences(service.log(), what) >= n)
            return true;
        std::this_thread::sleep_for(50ms);
    }
    return false;
}

// The service with a broker it reaches through a proxy the test can cut, and a subscriber
// that reaches the broker directly.
struct ProxiedService {
    ProxiedService()
        : network(broker.port()), probe(broker.url(), kEcuState),
          service(network.url(), dir.path / "state") {
        REQUIRE(service.process().wait_for_output("event=mqtt_connected", 5s));
    }
    TempDir dir;
    test::MosquittoBroker broker;
    test::CuttingProxy network;
    test::MqttProbe probe;
    test::ServiceProcess service;
};

} // namespace

// A LAN client that may publish to the broker plants a retained receipt naming our database
// (read from the broker: it is retained there) and a sequence a few readings ahead, right after
// a broker restart, while the service holds a backlog. Readings never sent cannot be at the
// broker, whatever a receipt says.
TEST_CASE("a planted receipt of our database does not make the backlog vanish") {
    TempDir dir;
    test::MosquittoBroker broker;
    test::ServiceProcess service(broker.url(), dir.path / "state");
    REQUIRE(service.process().wait_for_output("event=mqtt_connected", 5s));
    {
        test::MqttProbe probe(broker.url(), kEcuState);
        REQUIRE(test::upload(service.port(), upload_at_minute(0)).starts_with("101"));
        REQUIRE(probe.wait_for_count(is_live_state, 1));
    }
    json receipt;
    {
        test::MqttProbe spy(broker.url(), kReceipt);
        const auto r = spy.wait_for_topic(kReceipt);
        REQUIRE(r);
        receipt = json::parse(r->payload);
    }
    broker.stop();
    for (int m = 1; m <= 3; ++m)
        REQUIRE(test::upload(service.port(), upload_at_minute(m)).starts_with("101"));
    broker.start();
    {
        test::MqttProbe attacker(broker.url(), "nothing/here");
        receipt["sequence"] = receipt["sequence"].get<std::uint64_t>() + 3;
        attacker.publish(kReceipt, receipt.dump(), true);
    }
    test::MqttProbe probe(broker.url(), kEcuState);
    probe.wait_for_count(is_live_state, 3, 15s);
    INFO(service.log());
    CHECK(state_timestamps(probe) == minutes(1, 3)); // the backlog, published
    CHECK_THAT(service.log(), !Catch::Contains("not sent again after the reconnect"));
}

// A persistent broker that crashed (no shutdown save: Mosquitto writes its file at shutdown
// and every autosave_interval, 30 min by default) comes back with an older receipt and older
// states: its receipt names an older reading than the newest it acknowledged.
TEST_CASE("a persistent broker that lost its newest states gets them back") {
    TempDir dir;
    test::MosquittoBroker broker("", "", /*persistent=*/true);
    test::ServiceProcess service(broker.url(), dir.path / "state");
    REQUIRE(service.process().wait_for_output("event=mqtt_connected", 5s));
    {
        test::MqttProbe probe(broker.url(), kEcuState);
        REQUIRE(test::upload(service.port(), upload_at_minute(0)).starts_with("101"));
        REQUIRE(probe.wait_for_count(is_live_state, 1));
    }
    broker.stop(); // clean stop: the file now holds reading 0
    broker.start();
    REQUIRE(wait_log_count(service, "event=mqtt_connected", 2, 15s));
    {
        test::MqttProbe probe(broker.url(), kEcuState);
        for (int m = 1; m <= 2; ++m)
            REQUIRE(test::upload(service.port(), upload_at_minute(m)).starts_with("101"));
        REQUIRE(probe.wait_for_count(is_live_state, 2));
    }
    std::this_thread::sleep_for(300ms); // acknowledged
    broker.kill();                      // power cut / OOM: readings 1 and 2 never saved
    broker.start();
    REQUIRE(wait_log_count(service, "event=mqtt_connected", 3, 15s));
    std::this_thread::sleep_for(2s);
    test::MqttProbe late(broker.url(), kEcuState);
    const auto state = late.wait_for_topic(kEcuState);
    REQUIRE(state);
    INFO(service.log());
    CHECK(json::parse(state->payload)["timestamp"] == iso(2)); // the newest, not reading 0
}

// A restart of the service (an update, a host reboot), then a broker restart without
// persistence at night: what the broker held at the service's start is given back.
TEST_CASE("after a service restart a broker restarted without persistence gets the last "
          "states back") {
    TempDir dir;
    test::MosquittoBroker broker;
    {
        test::ServiceProcess first(broker.url(), dir.path / "state");
        REQUIRE(first.process().wait_for_output("event=mqtt_connected", 5s));
        test::MqttProbe probe(broker.url(), kEcuState);
        for (int m = 0; m <= 1; ++m)
            REQUIRE(test::upload(first.port(), upload_at_minute(m)).starts_with("101"));
        REQUIRE(probe.wait_for_count(is_live_state, 2));
        std::this_thread::sleep_for(300ms);
        first.process().signal(SIGTERM);
        REQUIRE(first.process().wait_for(10s));
    }
    test::ServiceProcess service(broker.url(), dir.path / "state");
    REQUIRE(service.process().wait_for_output("event=mqtt_connected", 5s));
    std::this_thread::sleep_for(1500ms); // start-up audit done
    broker.stop();                       // night: no upload comes
    broker.start();
    REQUIRE(wait_log_count(service, "event=mqtt_connected", 2, 15s));
    test::MqttProbe probe(broker.url(), "ecu2mqtt/#");
    const auto state = probe.wait_for_topic(kEcuState, 5s);
    INFO(service.log());
    CHECK(state);
    CHECK(probe.wait_for_topic("ecu2mqtt/" + kEcu + "/408000111178/state", 1s));
}

// Lost PUBACKs with 25 QS1 and the 64-message window: the broker took readings 1 and 2 whole
// and the first messages of reading 3. After the reconnect the receipt names reading 2, and the
// retained copies show how much of reading 3 the broker has: only the rest goes out.
TEST_CASE("after lost acknowledgements nothing the broker took is published twice") {
    TempDir dir;
    test::MosquittoBroker broker;
    test::CuttingProxy network(broker.port());
    test::MqttProbe probe(broker.url(), "ecu2mqtt/#");
    test::ServiceProcess service(network.url(), dir.path / "state");
    REQUIRE(service.process().wait_for_output("event=mqtt_connected", 5s));
    REQUIRE(test::upload(service.port(), big_upload(0)).starts_with("101"));
    REQUIRE(probe.wait_for_count(is_live_state, 1));
    std::this_thread::sleep_for(500ms); // discovery etc. acknowledged

    network.drop_from_broker(true);
    for (int m = 1; m <= 3; ++m)
        REQUIRE(test::upload(service.port(), big_upload(m)).starts_with("101"));
    const auto first_of_3 = "ecu2mqtt/" + kEcu + "/" + inverter_uid(0) + "/state";
    REQUIRE(probe.wait_for_payload(
        first_of_3, [](const std::string& p) { return p.find(iso(3)) != std::string::npos; }, 5s));
    std::this_thread::sleep_for(300ms);
    network.cut();
    network.drop_from_broker(false);
    REQUIRE(service.process().wait_for_output("not sent again after the reconnect", 15s));
    REQUIRE(probe.wait_for_count(is_live_state, 4, 10s));
    std::this_thread::sleep_for(500ms);

    std::map<std::string, int> publications; // topic + timestamp -> count
    for (const auto& m : probe.messages())
        if (!m.retained && !m.duplicate && m.topic.ends_with("/state") &&
            m.topic.starts_with("ecu2mqtt/" + kEcu + "/806"))
            ++publications[m.topic + " " + json::parse(m.payload)["timestamp"].get<std::string>()];
    int twice = 0;
    for (const auto& [key, n] : publications)
        if (n > 1) {
            UNSCOPED_INFO(key << " x" << n);
            ++twice;
        }
    CHECK(twice == 0);
    CHECK(state_timestamps(probe) == minutes(0, 3));
    test::MqttProbe late(broker.url(), kEcuState);
    const auto retained = late.wait_for_topic(kEcuState);
    REQUIRE(retained);
    CHECK(json::parse(retained->payload)["timestamp"] == iso(3)); // what stays at the broker
}

TEST_CASE("readings the broker took before the connection failed, unacknowledged, are not "
          "sent again after the reconnect") {
    ProxiedService bench;
    auto& [dir, broker, network, probe, service] = bench;
    REQUIRE(test::upload(service.port(), upload_at_minute(0)) == reply_for_minute(0));
    REQUIRE(probe.wait_for_count(is_live_state, 1));

    // The broker takes three readings, but its acknowledgements never come back.
    network.drop_from_broker(true);
    for (int m = 1; m <= 3; ++m)
        REQUIRE(test::upload(service.port(), upload_at_minute(m)) == reply_for_minute(m));
    REQUIRE(probe.wait_for_count(is_live_state, 4));
    network.cut();
    network.drop_from_broker(false);

    REQUIRE(service.process().wait_for_output("not sent again after the reconnect", 15s));
    REQUIRE(test::upload(service.port(), upload_at_minute(4)) == reply_for_minute(4));
    REQUIRE(probe.wait_for_count(is_live_state, 5, 10s));
    std::this_thread::sleep_for(300ms); // anything sent twice would show up now
    CHECK(state_timestamps(probe) == minutes(0, 4));
}

// The broker's answers take longer than the start-up audit's wait (2 s) after a reconnect,
// although it kept everything and took three newer readings whose acknowledgements were lost:
// giving back the last acknowledged states would make the live state go back.
TEST_CASE("a slow broker after a reconnect does not make the live state go back") {
    ProxiedService bench;
    auto& [dir, broker, network, probe, service] = bench;
    REQUIRE(test::upload(service.port(), upload_at_minute(0)).starts_with("101"));
    REQUIRE(probe.wait_for_count(is_live_state, 1));
    std::this_thread::sleep_for(300ms);

    network.drop_from_broker(true); // the broker takes readings 1..3, its PUBACKs are lost
    for (int m = 1; m <= 3; ++m)
        REQUIRE(test::upload(service.port(), upload_at_minute(m)).starts_with("101"));
    REQUIRE(probe.wait_for_count(is_live_state, 4));
    network.delay_from_broker(2500ms); // the next connection is slow
    network.cut();
    network.drop_from_broker(false);
    const bool gave_up =
        service.process().wait_for_output("event=broker_lost_retained_messages", 12s);
    network.delay_from_broker(0ms);
    network.cut(); // a fresh, fast connection for the rest
    std::this_thread::sleep_for(5s);
    INFO(service.log());
    CHECK_FALSE(gave_up); // the broker kept everything
    std::vector<double> lifetimes;
    for (const auto& m : probe.messages())
        if (is_live_state(m))
            lifetimes.push_back(json::parse(m.payload)["lifetime_energy_kwh"].get<double>());
    CHECK(std::is_sorted(lifetimes.begin(), lifetimes.end())); // never goes down
    CHECK(state_timestamps(probe) == minutes(0, 3));
    test::MqttProbe late(broker.url(), kEcuState);
    const auto retained = late.wait_for_topic(kEcuState);
    REQUIRE(retained);
    CHECK(json::parse(retained->payload)["timestamp"] == iso(3)); // what stays at the broker
}

namespace {

std::string ecu_n(int n) {
    return "2160000" + test::zero_padded(n, 5);
}
std::string inv_n(int ecu, int n) {
    return "806" + test::zero_padded(ecu, 4) + test::zero_padded(n, 5);
}
std::string installation(int ecu, int k) {
    test::UploadSpec spec;
    spec.ecu_id = ecu_n(ecu);
    spec.timestamp = stamp(k);
    for (int i = 0; i < 25; ++i)
        spec.inverters.push_back(test::inverter_with(inv_n(ecu, i), 4, 50 + k));
    spec.centiwatts = 25 * 4 * (50 + k) * 100LL;
    spec.decikwh = 100000 + k;
    return test::build_upload(spec);
}

} // namespace

// 4 ECUs x 25 QS1, a backlog while the broker is away, and the broker restarted without
// persistence twice: once for the backlog, once again in the middle of the restore.
TEST_CASE("4 ECUs x 25 QS1, broker restarted again mid-restore: every device discovered, "
          "online and newest; no state goes back") {
    constexpr int kEcus = 4;
    TempDir dir;
    test::MosquittoBroker broker;
    test::ServiceProcess service(broker.url(), dir.path / "state", {"--max-ecus", "4"});
    REQUIRE(service.process().wait_for_output("event=mqtt_connected", 5s));
    {
        test::MqttProbe probe(broker.url(), "ecu2mqtt/+/state");
        for (int e = 0; e < kEcus; ++e)
            REQUIRE(test::upload(service.port(), installation(e, 0)).starts_with("101"));
        REQUIRE(
            probe.wait_for_count([](const test::Received& m) { return !m.retained; }, kEcus, 10s));
        std::this_thread::sleep_for(500ms);
    }
    broker.stop();
    for (int k = 1; k <= 3; ++k)
        for (int e = 0; e < kEcus; ++e)
            REQUIRE(test::upload(service.port(), installation(e, k)).starts_with("101"));
    broker.start();
    REQUIRE(service.process().wait_for_output("event=broker_lost_retained_messages", 20s));
    broker.stop(); // again, while the states given back are on their way
    broker.start();
    REQUIRE(wait_log_count(service, "event=broker_lost_retained_messages", 2, 20s));
    std::this_thread::sleep_for(3s);

    test::MqttProbe probe(broker.url(), "#");
    std::this_thread::sleep_for(1500ms);
    std::map<std::string, test::Received> newest;
    for (const auto& m : probe.messages())
        newest[m.topic] = m;
    for (int e = 0; e < kEcus; ++e) {
        std::vector<std::string> devices{ecu_n(e)};
        for (int i = 0; i < 25; ++i)
            devices.push_back(inv_n(e, i));
        for (const auto& device : devices) {
            INFO("device " << device);
            CHECK(newest.contains("homeassistant/device/ecu2mqtt_" + device + "/config"));
            const std::string base =
                device == ecu_n(e) ? "ecu2mqtt/" + device : "ecu2mqtt/" + ecu_n(e) + "/" + device;
            REQUIRE(newest.contains(base + "/state"));
            CHECK(json::parse(newest[base + "/state"].payload)["timestamp"] == iso(3));
            REQUIRE(newest.contains(base + "/availability"));
            CHECK(newest[base + "/availability"].payload == "online");
        }
    }
    CHECK(service.process().running());
}

// Home Assistant restarts and then SIGTERM, both while the check after a reconnect is running
// (the broker answers slowly), with a backlog of readings held.
TEST_CASE("HA online and SIGTERM during the check: a clean stop, then every reading "
          "once and in order") {
    TempDir dir;
    test::MosquittoBroker broker;
    test::CuttingProxy network(broker.port());
    test::MqttProbe probe(broker.url(), kEcuState);
    std::optional<int> exit_code;
    std::chrono::milliseconds took{};
    {
        test::ServiceProcess service(network.url(), dir.path / "state");
        REQUIRE(service.process().wait_for_output("event=mqtt_connected", 5s));
        REQUIRE(test::upload(service.port(), upload_at_minute(0)).starts_with("101"));
        REQUIRE(probe.wait_for_count(is_live_state, 1));
        std::this_thread::sleep_for(300ms);
        network.drop_from_broker(true); // reading 1 taken, its PUBACK lost
        REQUIRE(test::upload(service.port(), upload_at_minute(1)).starts_with("101"));
        REQUIRE(probe.wait_for_count(is_live_state, 2));
        network.delay_from_broker(1500ms);
        network.cut();
        network.drop_from_broker(false);
        for (int m = 2; m <= 3; ++m) // held
            REQUIRE(test::upload(service.port(), upload_at_minute(m)).starts_with("101"));
        REQUIRE(wait_log_count(service, "event=mqtt_connected", 2, 15s));
        {
            test::MqttProbe ha(broker.url(), "nothing/here");
            ha.publish("homeassistant/status", "online");
        }
        std::this_thread::sleep_for(200ms);
        const auto start = std::chrono::steady_clock::now();
        service.process().signal(SIGTERM);
        exit_code = service.process().wait_for(15s);
        took = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - start);
        INFO(service.log());
        CHECK(exit_code == 0);
        CHECK(took < 5s);
    }
    network.delay_from_broker(0ms);
    test::ServiceProcess again(network.url(), dir.path / "state");
    probe.wait_for_count(is_live_state, 4, 10s);
    std::this_thread::sleep_for(1s);
    INFO(again.log());
    CHECK(state_timestamps(probe) == minutes(0, 3));
}

} // namespace test_broker_loss
