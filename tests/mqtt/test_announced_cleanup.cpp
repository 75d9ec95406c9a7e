// Cleanup that needs no read-back, and a broker that lets the service write but not read, with
// a clock the test moves, against a real Mosquitto.
#include "support/eventually.hpp"
#include "support/fixed_clock.hpp"
#include "support/mosquitto_broker.hpp"
#include "support/mqtt_probe.hpp"
#include "support/restricted_broker.hpp"
#include "support/running_publisher.hpp"
#include "support/store_probe.hpp"
#include "support/temp_dir.hpp"
#include "support/upload_builder.hpp"

#include <catch2/catch.hpp>
#include <map>
#include <thread>

using namespace std::chrono_literals;

namespace test_announced_cleanup {
namespace {

const std::string kEcu = "216000064136";
const std::string kOld = "806000000001";
const std::string kKept = "806000000002";
const std::string kEcuState = "ecu2mqtt/" + kEcu + "/state";

std::string device_topic(const std::string& id) {
    return "homeassistant/device/ecu2mqtt_" + id + "/config";
}

// What a subscriber arriving now gets: the retained messages, by topic. The broker sends them
// when it takes the subscription, before the echo of a message published after it.
std::map<std::string, std::string> retained_now(const std::string& url) {
    test::MqttProbe probe(url, "#", "retained");
    const std::string marker =
        "retained-now-" +
        std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
    probe.publish("test/echo", marker);
    REQUIRE(probe.wait_for_payload("test/echo", [&](const auto& p) { return p == marker; }));
    std::map<std::string, std::string> retained;
    for (const auto& m : probe.messages())
        if (m.retained)
            retained[m.topic] = m.payload;
    return retained;
}

using test::eventually;

std::size_t occurrences(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1))
        ++n;
    return n;
}

} // namespace

// The stored reading of 30 June names the old inverter (absent) and waits for the broker; the
// clear of its topics was only in memory, and the restart lost it: the reading published the
// old inverter's state again as an orphan, and its availability stayed.
TEST_CASE("an inverter forgotten while the broker is away is cleared after a restart before the "
          "broker returns, and stays cleared") {
    test::MosquittoBroker broker("", "", /*persistent=*/true);
    test::TempDir dir;
    const auto state_dir = dir.path / "state";
    test::FixedClock clock({2024, 6, 1, 12, 0, 0});
    const std::vector<std::string> old_topics{device_topic(kOld),
                                              "ecu2mqtt/" + kEcu + "/" + kOld + "/state",
                                              "ecu2mqtt/" + kEcu + "/" + kOld + "/availability"};
    const auto kept_state = "ecu2mqtt/" + kEcu + "/" + kKept + "/state";
    auto publisher = std::make_unique<test::RunningPublisher>(broker.url(), state_dir, clock);
    publisher->upload("20240601120000",
                      {test::inverter_with(kOld, 4, 50), test::inverter_with(kKept, 4, 50)});
    clock.set({2024, 6, 2, 12, 0, 0});
    publisher->upload("20240602120000", {test::inverter_with(kKept, 4, 50)});
    REQUIRE(eventually([&] {
        auto r = retained_now(broker.url());
        return r.contains(old_topics[0]) && r.contains(old_topics[2]) &&
               r[old_topics[1]].find("2024-06-02") != std::string::npos;
    }));
    CHECK(test::wait_for_number(state_dir, "SELECT count(*) FROM announced_devices", 3) == 3);

    broker.stop(); // keeps its retained messages
    clock.set({2024, 6, 30, 12, 0, 0});
    publisher->upload("20240630120000", {test::inverter_with(kKept, 4, 51)}); // names kOld, absent
    clock.set({2024, 7, 1, 12, 0, 1});
    REQUIRE(eventually([&] {
        return publisher->log().find("event=inverter_forgotten ecu=" + kEcu +
                                     " inverter=" + kOld) != std::string::npos;
    }));
    CHECK(test::wait_for_number(state_dir, "SELECT count(*) FROM pending_clears", 3) == 3);
    publisher.reset(); // the service restarts, the broker still away
    publisher = std::make_unique<test::RunningPublisher>(broker.url(), state_dir, clock);
    broker.start();
    test::MqttProbe watcher(broker.url(), "#", "watcher");

    REQUIRE(eventually(
        [&] {
            return retained_now(broker.url())[kept_state].find("2024-06-30") != std::string::npos;
        },
        20s));
    INFO(publisher->log());
    CHECK(eventually([&] {
        const auto r = retained_now(broker.url());
        return std::none_of(old_topics.begin(), old_topics.end(),
                            [&](const auto& t) { return r.contains(t); });
    }));
    for (const auto& topic : old_topics) // an empty retained message, seen by a subscriber
        CHECK(watcher.wait_for_payload(topic, [](const auto& p) { return p.empty(); }));
    // Settled once the broker has the clears and no stored reading names the topics.
    CHECK(test::wait_for_number(state_dir, "SELECT count(*) FROM pending_clears", 0) == 0);
    CHECK(
        test::query_number(state_dir, "SELECT count(*) FROM announced_devices WHERE device_id = '" +
                                          kOld + "'") == 0);

    // Never back: not after another restart, not with the next upload.
    publisher.reset();
    publisher = std::make_unique<test::RunningPublisher>(broker.url(), state_dir, clock);
    REQUIRE(eventually(
        [&] { return publisher->log().find("event=startup_audit_done") != std::string::npos; }));
    publisher->upload("20240701120500", {test::inverter_with(kKept, 4, 50)});
    REQUIRE(eventually([&] {
        return retained_now(broker.url())[kept_state].find("12:05:00") != std::string::npos;
    }));
    const auto retained = retained_now(broker.url());
    for (const auto& topic : old_topics) {
        INFO(topic);
        CHECK_FALSE(retained.contains(topic));
        std::string last = "(none)";
        for (const auto& m : watcher.messages())
            if (m.topic == topic)
                last = m.payload;
        CHECK(last.empty());
    }
}

// An ECU's devices recorded in the state directory are cleared at start once the ECU is no
// longer known, even when the broker lets nothing be read back.
TEST_CASE("devices announced and no longer known are cleared at start from the state directory's "
          "record, without reading the broker back") {
    test::RestrictedBroker broker(test::RestrictedBroker::Denial::Silent);
    test::TempDir dir;
    const auto state_dir = dir.path / "state";
    test::FixedClock clock({2024, 6, 1, 12, 0, 0});
    const auto credentials = [](ecu2mqtt::PublisherConfig& config, auto&) {
        config.user = test::RestrictedBroker::kServiceUser;
        config.password = test::RestrictedBroker::kPassword;
    };
    test::MqttProbe reader(broker.url(), "#", "reader", "", test::RestrictedBroker::kReaderUser,
                           test::RestrictedBroker::kPassword);
    {
        test::RunningPublisher publisher(broker.url(), state_dir, clock, credentials);
        publisher.upload("20240601120000", {test::inverter_with(kKept, 4, 50)});
        REQUIRE(reader.wait_for_topic(device_topic(kKept), 10s));
        CHECK(test::wait_for_number(state_dir, "SELECT count(*) FROM announced_devices", 2) == 2);
    }
    // The ECU's ledger is lost (a state record no longer readable, say): it is no longer known.
    test::execute(state_dir, "DELETE FROM ecu_state");
    reader.clear();
    test::RunningPublisher publisher(broker.url(), state_dir, clock, credentials);
    for (const auto& topic : {device_topic(kKept), device_topic(kEcu), kEcuState,
                              "ecu2mqtt/" + kEcu + "/" + kKept + "/availability"}) {
        INFO(topic);
        CHECK(reader.wait_for_payload(
            topic, [](const auto& p) { return p.empty(); }, 10s));
    }
    CHECK(test::wait_for_number(state_dir, "SELECT count(*) FROM announced_devices", 0) == 0);
}

namespace {

// The service's reading of 12:05 waits in the store while the broker restarts; returns how long
// after the broker is back a reader has it.
std::chrono::milliseconds reading_after_broker_restart(test::RestrictedBroker& broker,
                                                       test::RunningPublisher& publisher,
                                                       test::FixedClock& clock) {
    const auto reader = [&] {
        return std::make_unique<test::MqttProbe>(broker.url(), kEcuState, "reader", "",
                                                 test::RestrictedBroker::kReaderUser,
                                                 test::RestrictedBroker::kPassword);
    };
    auto first = reader();
    publisher.upload("20240601120000", {test::inverter_with(kKept, 4, 50)});
    REQUIRE(first->wait_for_payload(
        kEcuState, [](const auto& p) { return p.find("12:00:00") != std::string::npos; }, 10s));
    first.reset();
    broker.stop();
    clock.set({2024, 6, 1, 12, 5, 0});
    publisher.upload("20240601120500", {test::inverter_with(kKept, 4, 60)});
    broker.start();
    const auto back = std::chrono::steady_clock::now();
    auto second = reader();
    REQUIRE(second->wait_for_payload(
        kEcuState, [](const auto& p) { return p.find("12:05:00") != std::string::npos; }, 20s));
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 back);
}

void as_service_user(ecu2mqtt::PublisherConfig& config, ecu2mqtt::StoreLimits&) {
    config.user = test::RestrictedBroker::kServiceUser;
    config.password = test::RestrictedBroker::kPassword;
    config.discovery_audit_wait = 2s; // as shipped: the reconnect check would wait 10 s
}

} // namespace

TEST_CASE("a broker that refuses to let the service read its topics back costs no wait at a "
          "reconnect, and readings are delivered") {
    test::RestrictedBroker broker(test::RestrictedBroker::Denial::Refused);
    test::TempDir dir;
    test::FixedClock clock({2024, 6, 1, 12, 0, 0});
    test::RunningPublisher publisher(broker.url(), dir.path / "state", clock, as_service_user);
    const auto took = reading_after_broker_restart(broker, publisher, clock);
    INFO(publisher.log());
    CHECK(took < 6s); // reconnecting takes a second or two; the check alone waited 10 s
    CHECK(occurrences(publisher.log(), "event=mqtt_readback_refused") == 1);
    CHECK(publisher.log().find("event=mqtt_broker_slow") == std::string::npos);
}

TEST_CASE("a broker that takes the read-back subscriptions but delivers nothing costs one wait, "
          "not one per reconnect") {
    test::RestrictedBroker broker(test::RestrictedBroker::Denial::Silent);
    test::TempDir dir;
    test::FixedClock clock({2024, 6, 1, 12, 0, 0});
    test::RunningPublisher publisher(broker.url(), dir.path / "state", clock, as_service_user);
    const auto took = reading_after_broker_restart(broker, publisher, clock);
    INFO(publisher.log());
    CHECK(took < 6s);
    // The start-up audit's wait ran out with nothing read: learned there.
    CHECK(occurrences(publisher.log(), "event=mqtt_readback_unanswered") == 1);
    CHECK(publisher.log().find("event=mqtt_broker_slow") == std::string::npos);
}

} // namespace test_announced_cleanup
