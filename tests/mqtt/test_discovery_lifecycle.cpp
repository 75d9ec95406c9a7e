// Device discovery over time, with a clock the test moves, against a real Mosquitto: what is
// cleared at start, when discovery is turned off, and when an inverter is replaced.
#include "ecu2mqtt/mqtt/mqtt_publisher.hpp"
#include "ecu2mqtt/protocol/decoder.hpp"
#include "support/eventually.hpp"
#include "support/fixed_clock.hpp"
#include "support/mosquitto_broker.hpp"
#include "support/mqtt_probe.hpp"
#include "support/running_publisher.hpp"
#include "support/store_probe.hpp"
#include "support/upload_builder.hpp"

#include "ecu2mqtt/net/asio.hpp"
#include <catch2/catch.hpp>
#include <future>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

using namespace ecu2mqtt;
using namespace std::chrono_literals;

namespace test_discovery_lifecycle {
namespace {

const std::string kEcu = "216000064136";
const std::string kOld = "806000000001";
const std::string kKept = "806000000002";
const std::string kNew = "806000000003";

std::string device_topic(const std::string& id) {
    return "homeassistant/device/ecu2mqtt_" + id + "/config";
}

// What a subscriber arriving now gets: the retained messages, by topic.
std::map<std::string, std::string> retained_now(const test::MosquittoBroker& broker,
                                                const std::string& filter) {
    test::MqttProbe probe(broker.url(), filter, "retained");
    std::this_thread::sleep_for(300ms);
    std::map<std::string, std::string> retained;
    for (const auto& m : probe.messages())
        if (m.retained)
            retained[m.topic] = m.payload;
    return retained;
}

using test::eventually;

} // namespace

TEST_CASE("a replaced inverter is forgotten after 30 days unseen: device, state and "
          "availability cleared") {
    test::MosquittoBroker broker;
    const auto dir = test::make_temp_dir("ecu2mqtt-lifecycle");
    test::FixedClock clock({2024, 6, 1, 12, 0, 0});
    test::RunningPublisher publisher(broker.url(), dir / "state", clock);
    publisher.upload("20240601120000",
                     {test::inverter_with(kOld, 4, 50), test::inverter_with(kKept, 4, 50)});
    REQUIRE(eventually([&] {
        return retained_now(broker, "homeassistant/device/+/config").contains(device_topic(kOld));
    }));

    // The old inverter is replaced by a new one; 29 days later it is still remembered (absent).
    clock.set({2024, 6, 2, 12, 0, 0});
    publisher.upload("20240602120000",
                     {test::inverter_with(kNew, 4, 50), test::inverter_with(kKept, 4, 50)});
    clock.set({2024, 6, 30, 12, 0, 0});
    std::this_thread::sleep_for(600ms);
    auto retained = retained_now(broker, "#");
    CHECK(retained.contains(device_topic(kOld)));

    // Past 30 days unseen it goes, with its topics; the others stay.
    clock.set({2024, 7, 1, 12, 0, 1});
    REQUIRE(eventually([&] {
        return !retained_now(broker, "homeassistant/device/+/config").contains(device_topic(kOld));
    }));
    retained = retained_now(broker, "#");
    CHECK_FALSE(retained.contains("ecu2mqtt/" + kEcu + "/" + kOld + "/state"));
    CHECK_FALSE(retained.contains("ecu2mqtt/" + kEcu + "/" + kOld + "/availability"));
    CHECK(retained.contains(device_topic(kKept)));
    CHECK(retained.contains(device_topic(kNew)));
    CHECK(retained.contains(device_topic(kEcu)));
    CHECK(retained.contains("ecu2mqtt/" + kEcu + "/" + kKept + "/state"));
    CHECK(publisher.log().find("event=inverter_forgotten ecu=" + kEcu + " inverter=" + kOld) !=
          std::string::npos);

    // A later upload does not bring it back.
    publisher.upload("20240701120500",
                     {test::inverter_with(kNew, 4, 50), test::inverter_with(kKept, 4, 50)});
    std::this_thread::sleep_for(300ms);
    CHECK_FALSE(retained_now(broker, "#").contains(device_topic(kOld)));
    std::filesystem::remove_all(dir);
}

TEST_CASE("at start, our configs of devices no longer known are cleared and others are kept") {
    test::MosquittoBroker broker;
    const auto dir = test::make_temp_dir("ecu2mqtt-lifecycle");
    test::FixedClock clock({2024, 6, 1, 12, 0, 0});
    {
        test::MqttProbe seeder(broker.url(), "unused/#", "seeder");
        seeder.publish(device_topic("999999999999"), R"({"cmps":{}})", true);
        seeder.publish("homeassistant/device/zigbee2mqtt_0x1/config", R"({"cmps":{}})", true);
        // Another ecu2mqtt on this broker, with its own base topic, announced this one.
        seeder.publish(device_topic("216000099999"),
                       R"({"cmps":{},"availability":[{"topic":"site2/bridge/state"}]})", true);
    }
    test::RunningPublisher publisher(broker.url(), dir / "state", clock);
    publisher.upload("20240601120000", {test::inverter_with(kKept, 2, 50)});
    REQUIRE(eventually([&] {
        const auto retained = retained_now(broker, "homeassistant/device/+/config");
        return !retained.contains(device_topic("999999999999")) &&
               retained.contains(device_topic(kKept));
    }));
    const auto retained = retained_now(broker, "homeassistant/device/+/config");
    CHECK(retained.contains("homeassistant/device/zigbee2mqtt_0x1/config"));
    CHECK(retained.contains(device_topic(kEcu)));
    CHECK(retained.contains(device_topic("216000099999")));
    std::filesystem::remove_all(dir);
}

TEST_CASE("turning discovery off clears every config of ours at the next start") {
    test::MosquittoBroker broker;
    const auto dir = test::make_temp_dir("ecu2mqtt-lifecycle");
    test::FixedClock clock({2024, 6, 1, 12, 0, 0});
    {
        test::RunningPublisher with_discovery(broker.url(), dir / "state", clock);
        with_discovery.upload("20240601120000", {test::inverter_with(kKept, 4, 50)});
        REQUIRE(eventually(
            [&] { return retained_now(broker, "homeassistant/device/+/config").size() == 2; }));
    }
    test::RunningPublisher without(broker.url(), dir / "state", clock,
                                   [](auto& config, auto&) { config.discovery = false; });
    REQUIRE(
        eventually([&] { return retained_now(broker, "homeassistant/device/+/config").empty(); }));
    without.upload("20240601120500", {test::inverter_with(kKept, 4, 50)});
    std::this_thread::sleep_for(300ms);
    CHECK(retained_now(broker, "homeassistant/device/+/config").empty());
    // The states themselves still flow.
    CHECK(retained_now(broker, "ecu2mqtt/#").contains("ecu2mqtt/" + kEcu + "/" + kKept + "/state"));
    std::filesystem::remove_all(dir);
}

TEST_CASE("an inverter that reports fewer channels loses those entities in its device config") {
    test::MosquittoBroker broker;
    const auto dir = test::make_temp_dir("ecu2mqtt-lifecycle");
    test::FixedClock clock({2024, 6, 1, 12, 0, 0});
    {
        test::RunningPublisher before(broker.url(), dir / "state", clock);
        before.upload("20240601120000", {test::inverter_with(kKept, 4, 50)});
        REQUIRE(eventually([&] {
            return retained_now(broker, "homeassistant/device/+/config")
                .contains(device_topic(kKept));
        }));
    }
    test::RunningPublisher after(broker.url(), dir / "state", clock);
    after.upload("20240601120500", {test::inverter_with(kKept, 2, 50)});
    nlohmann::json config;
    REQUIRE(eventually([&] {
        const auto retained = retained_now(broker, "homeassistant/device/+/config");
        const auto it = retained.find(device_topic(kKept));
        if (it == retained.end())
            return false;
        config = nlohmann::json::parse(it->second);
        return config["cmps"]["ch4_voltage"] == nlohmann::json{{"p", "sensor"}};
    }));
    CHECK(config["cmps"]["ch2_voltage"].contains("unique_id"));
    std::filesystem::remove_all(dir);
}

TEST_CASE("an ECU silent for 30 days is forgotten with its inverters and stored state") {
    test::MosquittoBroker broker;
    const auto dir = test::make_temp_dir("ecu2mqtt-lifecycle");
    test::FixedClock clock({2024, 6, 1, 12, 0, 0});
    test::RunningPublisher publisher(broker.url(), dir / "state", clock);
    publisher.upload("20240601120000", {test::inverter_with(kKept, 4, 50)});
    REQUIRE(eventually(
        [&] { return retained_now(broker, "homeassistant/device/+/config").size() == 2; }));
    const auto stored = [&] {
        return test::query_number(dir / "state",
                                  "SELECT count(*) FROM ecu_state WHERE ecu_id = '" + kEcu + "'");
    };
    CHECK(stored() == 1);
    clock.set({2024, 7, 1, 12, 0, 1});
    REQUIRE(eventually([&] {
        for (const auto& [topic, payload] : retained_now(broker, "#"))
            if (topic.find(kEcu) != std::string::npos || topic.find(kKept) != std::string::npos)
                return false;
        return true;
    }));
    CHECK(eventually([&] { return stored() == 0; }));
    CHECK(publisher.log().find("event=ecu_forgotten ecu=" + kEcu) != std::string::npos);
    std::filesystem::remove_all(dir);
}

// The start-up audit ends while the ECU's first upload is still being written: the ledger has
// no state for it yet, and there is no device to describe.
TEST_CASE("an ECU is announced once its first upload is stored, never as a device without a "
          "model") {
    test::MosquittoBroker broker;
    broker.stop();
    const auto dir = test::make_temp_dir("ecu2mqtt-lifecycle");
    test::FixedClock clock({2024, 6, 1, 12, 0, 0});
    test::RunningPublisher publisher(broker.url(), dir / "state", clock, [](auto&, auto& store) {
        store.busy_timeout = 30s; // the commit waits for the lock below instead of failing
    });
    auto lock = std::make_unique<test::DatabaseWriteLock>(Store::file_in(dir / "state"));
    test::UploadSpec first;
    first.timestamp = "20240601120000";
    first.inverters = {test::inverter_with(kKept, 4, 50)};
    auto handled = std::async(std::launch::async, [&] { return publisher.upload(first).handled; });

    broker.start();
    test::MqttProbe probe(broker.url(), "homeassistant/device/#"); // before the service connects
    REQUIRE(eventually(
        [&] { return publisher.log().find("event=startup_audit_done") != std::string::npos; },
        15s));
    lock.reset();
    CHECK(handled.get());
    UNSCOPED_INFO(publisher.log());
    std::map<std::string, std::string> configs;
    REQUIRE(eventually([&] {
        configs = retained_now(broker, "homeassistant/device/+/config");
        return configs.size() == 2;
    }));
    const auto ecu = nlohmann::json::parse(configs.at(device_topic(kEcu)));
    CHECK(ecu["device"]["model"] == "ECU-R");
    CHECK(ecu["device"]["name"] == "APsystems ECU-R " + kEcu);
    for (const auto& m : probe.messages()) {
        INFO(m.topic << " " << m.payload);
        CHECK(nlohmann::json::parse(m.payload)["device"]["model"] != "");
    }
    CHECK(probe.count([](const auto& m) { return m.topic == device_topic(kEcu); }) == 1);
}

// With --max-ecus reached, a new ECU makes room by evicting the quietest offline one; an ECU
// whose first upload is still being written is offline and has never been heard, but it must
// not be the one: its commit would land after its state was dropped.
TEST_CASE("an ECU whose first upload is being written is not evicted to make room for another") {
    test::MosquittoBroker broker;
    const auto dir = test::make_temp_dir("ecu2mqtt-lifecycle");
    test::FixedClock clock({2024, 6, 1, 12, 0, 0});
    test::RunningPublisher publisher(broker.url(), dir / "state", clock,
                                     [](auto& config, auto& store) {
                                         config.max_ecus = 1;
                                         store.busy_timeout = 30s;
                                     });
    auto lock = std::make_unique<test::DatabaseWriteLock>(Store::file_in(dir / "state"));
    test::UploadSpec first;
    first.ecu_id = kEcu;
    first.timestamp = "20240601120000";
    first.inverters = {test::inverter_with(kKept, 4, 50)};
    auto first_handled =
        std::async(std::launch::async, [&] { return publisher.upload(first).handled; });
    REQUIRE(eventually([&] {
        return test::query_number(dir / "state", "SELECT count(*) FROM ecu_state") == 0 &&
               publisher.log().find("event=startup_audit_done") != std::string::npos;
    }));
    auto other = first;
    other.ecu_id = "216000099999";
    other.inverters = {test::inverter_with(kNew, 4, 50)};
    auto other_handled =
        std::async(std::launch::async, [&] { return publisher.upload(other).handled; });
    REQUIRE(eventually([&] {
        return publisher.log().find("event=ecu_limit_reached ecu=216000099999") !=
               std::string::npos;
    }));
    lock.reset();
    CHECK(first_handled.get());
    other_handled.get();
    CHECK(publisher.log().find("event=ecu_forgotten") == std::string::npos);
    CHECK(test::wait_for_number(dir / "state",
                                "SELECT count(*) FROM ecu_state WHERE ecu_id = '" + kEcu + "'",
                                1) == 1);
    CHECK(eventually([&] {
        return retained_now(broker, "homeassistant/device/+/config").contains(device_topic(kEcu));
    }));
}

// The broker is away when the 30 days pass: the inverter's clear waits together with the last
// reading that still named it (as absent). On reconnect the clear, a latest value, goes first.
TEST_CASE("an inverter forgotten while the broker was away stays cleared, also after the "
          "next broker restart") {
    test::MosquittoBroker broker; // no persistence
    const auto dir = test::make_temp_dir("ecu2mqtt-lifecycle");
    test::FixedClock clock({2024, 6, 1, 12, 0, 0});
    test::RunningPublisher publisher(broker.url(), dir / "state", clock);
    const auto old_state = "ecu2mqtt/" + kEcu + "/" + kOld + "/state";
    publisher.upload("20240601120000",
                     {test::inverter_with(kOld, 4, 50), test::inverter_with(kKept, 4, 50)});
    clock.set({2024, 6, 2, 12, 0, 0});
    publisher.upload("20240602120000", {test::inverter_with(kKept, 4, 50)});
    REQUIRE(eventually([&] {
        auto r = retained_now(broker, "ecu2mqtt/#");
        return r.contains(old_state) && r[old_state].find("2024-06-02") != std::string::npos;
    }));

    broker.stop();
    clock.set({2024, 6, 30, 12, 0, 0});
    publisher.upload("20240630120000", {test::inverter_with(kKept, 4, 51)}); // names kOld, absent
    clock.set({2024, 7, 1, 12, 0, 1});
    REQUIRE(eventually([&] {
        return publisher.log().find("event=inverter_forgotten ecu=" + kEcu + " inverter=" + kOld) !=
               std::string::npos;
    }));
    broker.start();
    REQUIRE(eventually(
        [&] {
            auto r = retained_now(broker, "ecu2mqtt/#");
            return r.contains("ecu2mqtt/" + kEcu + "/" + kKept + "/state") &&
                   r["ecu2mqtt/" + kEcu + "/" + kKept + "/state"].find("2024-06-30") !=
                       std::string::npos;
        },
        10s));
    std::this_thread::sleep_for(500ms);
    auto retained = retained_now(broker, "#");
    INFO("after the first restart: " << (retained.contains(old_state) ? retained[old_state] : "-"));
    CHECK_FALSE(retained.contains(old_state));

    // And again: a second restart without persistence.
    broker.stop();
    broker.start();
    std::this_thread::sleep_for(3s);
    retained = retained_now(broker, "#");
    INFO(
        "after the second restart: " << (retained.contains(old_state) ? retained[old_state] : "-"));
    CHECK(retained.contains("ecu2mqtt/" + kEcu + "/" + kKept + "/state"));
    CHECK_FALSE(retained.contains(old_state));
    CHECK_FALSE(retained.contains("homeassistant/device/ecu2mqtt_" + kOld + "/config"));
    std::filesystem::remove_all(dir);
}

} // namespace test_discovery_lifecycle
