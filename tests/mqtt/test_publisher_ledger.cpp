// What Home Assistant sees when ECU clocks misbehave: the publisher with its ledger, a clock the
// test moves and a real Mosquitto. The ledger's own rules are unit-tested in tests/ledger/.
#include "support/mosquitto_broker.hpp"
#include "support/mqtt_probe.hpp"
#include "support/running_publisher.hpp"
#include "support/store_probe.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace ecu2mqtt;
using namespace std::chrono_literals;
using nlohmann::json;

namespace test_publisher_ledger {
namespace {

const std::string kEcu = "216000064136";
const std::string kState = "ecu2mqtt/" + kEcu + "/state";
const std::string kHistory = "ecu2mqtt/" + kEcu + "/history";

test::UploadSpec reading(const std::string& stamp, long long decikwh, int watts = 100) {
    test::UploadSpec spec;
    spec.timestamp = stamp;
    spec.decikwh = decikwh;
    spec.centiwatts = watts * 100LL;
    spec.inverters = {test::inverter_with("806000000001", 4, watts / 4)};
    return spec;
}

std::vector<json> payloads_on(const test::MqttProbe& probe, const std::string& topic) {
    std::vector<json> out;
    for (const auto& m : probe.messages())
        if (m.topic == topic && !m.payload.empty())
            out.push_back(json::parse(m.payload));
    return out;
}

// The invariant of the Energy dashboard: lifetime on the state topic never goes down.
void require_lifetime_never_decreases(const test::MqttProbe& probe) {
    double highest = 0;
    for (const auto& state : payloads_on(probe, kState)) {
        const double lifetime = state.at("lifetime_energy_kwh").get<double>();
        REQUIRE(lifetime >= highest);
        highest = lifetime;
    }
}

} // namespace

TEST_CASE("an upload stamped 2099 is answered but freezes nothing, a late one goes to history") {
    test::MosquittoBroker broker;
    const auto dir = test::make_temp_dir("ecu2mqtt-ledger");
    test::MqttProbe probe(broker.url(), "ecu2mqtt/" + kEcu + "/#");
    test::FixedClock clock({2024, 6, 21, 10, 0, 5}); // ECU and host agree (offset about 0)
    test::RunningPublisher publisher(broker.url(), dir / "state", clock);

    clock.set({2024, 6, 21, 10, 0, 5});
    CHECK(publisher.upload(reading("20240621100000", 30000)).handled);
    clock.set({2024, 6, 21, 10, 5, 5});
    CHECK(publisher.upload(reading("20240621100500", 30003)).handled);
    REQUIRE(probe.wait_for_payload(kState, [](const std::string& p) {
        return json::parse(p)["timestamp"] == "2024-06-21T10:05:00";
    }));

    // An RTC glitch: answered, nothing published, nothing moved.
    clock.set({2024, 6, 21, 10, 10, 5});
    const auto glitch = publisher.upload(reading("20990101000000", 99999));
    CHECK(glitch.handled);
    CHECK(glitch.clock_suspect);
    CHECK_FALSE(glitch.resend_from);
    // The clock is right again: the next upload is live and counts from where it was.
    clock.set({2024, 6, 21, 10, 15, 5});
    publisher.upload(reading("20240621101500", 30005));
    const auto live = probe.wait_for_payload(kState, [](const std::string& p) {
        return json::parse(p)["timestamp"] == "2024-06-21T10:15:00";
    });
    REQUIRE(live);
    CHECK(json::parse(live->payload)["lifetime_energy_kwh"] == 3000.5);
    CHECK(json::parse(live->payload)["today_energy_kwh"] == 0.5);
    CHECK(json::parse(live->payload)["clock_offset_s"].is_number());

    // A late re-send (the ECU filling a hole): history only, the state stays the newest.
    clock.set({2024, 6, 21, 10, 20, 5});
    CHECK(publisher.upload(reading("20240621101000", 30004, 50)).handled);
    const auto late = probe.wait_for_topic(kHistory);
    REQUIRE(late);
    CHECK_FALSE(late->retained);
    CHECK(json::parse(late->payload)["timestamp"] == "2024-06-21T10:10:00");
    CHECK(json::parse(late->payload)["inverters"].contains("806000000001"));
    std::this_thread::sleep_for(200ms);
    for (const auto& state : payloads_on(probe, kState))
        CHECK(state["timestamp"] != "2099-01-01T00:00:00");
    CHECK(payloads_on(probe, kState).back()["timestamp"] == "2024-06-21T10:15:00");
    require_lifetime_never_decreases(probe);

    // The same reading again is a repeat: answered, not published.
    probe.clear();
    const auto repeat = publisher.upload(reading("20240621101500", 30005));
    CHECK(repeat.duplicate);
    std::this_thread::sleep_for(200ms);
    CHECK(payloads_on(probe, kState).empty());
    CHECK(publisher.log().find("event=upload_clock_suspect ecu=" + kEcu) != std::string::npos);
    std::filesystem::remove_all(dir);
}

TEST_CASE("an ECU in California on a UTC host resets today's energy at its own midnight") {
    test::MosquittoBroker broker;
    const auto dir = test::make_temp_dir("ecu2mqtt-ledger");
    test::MqttProbe probe(broker.url(), kState);
    // Host 2024-06-21 23:50 UTC; the ECU says 16:50 (UTC-7, summer time).
    test::FixedClock clock({2024, 6, 21, 23, 50, 5});
    test::RunningPublisher publisher(broker.url(), dir / "state", clock);
    int minute = 0;
    long long decikwh = 30000;
    const auto upload_at_host = [&](int day, int hour, int min) {
        clock.set({2024, 6, day, hour, min, 5});
        const int ecu_hour = (hour + 24 - 7) % 24;
        const int ecu_day = hour < 7 ? day - 1 : day;
        decikwh += 2;
        ++minute;
        char stamp[16];
        std::snprintf(stamp, sizeof stamp, "202406%02d%02d%02d00", ecu_day, ecu_hour, min);
        return publisher.upload(reading(stamp, decikwh));
    };
    for (int m = 50; m <= 55; m += 5)
        upload_at_host(21, 23, m); // ECU 16:50, 16:55
    for (int m = 0; m <= 55; m += 5)
        upload_at_host(22, 0, m); // host midnight passes: ECU 17:00 … 17:55
    const auto evening = probe.wait_for_payload(kState, [](const std::string& p) {
        return json::parse(p)["timestamp"] == "2024-06-21T17:55:00";
    });
    REQUIRE(evening);
    // 14 readings 0.2 kWh apart: the host's midnight reset nothing.
    CHECK(json::parse(evening->payload)["today_energy_kwh"] == Approx(2.6));

    // The ECU's midnight (07:00 UTC) resets it, once, and the next reading counts from there.
    probe.clear();
    clock.set({2024, 6, 22, 7, 0, 30});
    const auto reset = probe.wait_for_payload(
        kState, [](const std::string& p) { return json::parse(p)["today_energy_kwh"] == 0.0; }, 3s);
    CHECK(reset);
    upload_at_host(22, 7, 5); // ECU 2024-06-22 00:05
    const auto morning = probe.wait_for_payload(kState, [](const std::string& p) {
        return json::parse(p)["timestamp"] == "2024-06-22T00:05:00";
    });
    REQUIRE(morning);
    CHECK(json::parse(morning->payload)["today_energy_kwh"] == Approx(0.2));
    require_lifetime_never_decreases(probe);
    std::filesystem::remove_all(dir);
}

TEST_CASE("a midnight reset that cannot be written is written and published once writing works") {
    test::MosquittoBroker broker;
    const auto dir = test::make_temp_dir("ecu2mqtt-ledger");
    test::MqttProbe probe(broker.url(), kState);
    test::FixedClock clock({2024, 6, 21, 23, 50, 5});
    test::RunningPublisher publisher(broker.url(), dir / "state", clock,
                                     [](PipelineConfig& config, StoreLimits& limits) {
                                         config.store_retry = 300ms;
                                         limits.busy_timeout = 200ms;
                                     });
    publisher.upload(reading("20240621235000", 30000));
    clock.set({2024, 6, 21, 23, 55, 5});
    publisher.upload(reading("20240621235500", 30004));
    REQUIRE(probe.wait_for_payload(
        kState, [](const std::string& p) { return json::parse(p)["today_energy_kwh"] == 0.4; }));

    probe.clear();
    {
        // The disk is full at midnight: the reset cannot be kept.
        test::DatabaseWriteLock lock(Store::file_in(dir / "state"));
        clock.set({2024, 6, 22, 0, 0, 30});
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        while (publisher.log().find("what=\"today's energy reset\"") == std::string::npos &&
               std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(20ms);
        REQUIRE_THAT(publisher.log(), Catch::Contains("what=\"today's energy reset\""));
    }
    const auto reset = probe.wait_for_payload(
        kState, [](const std::string& p) { return json::parse(p)["today_energy_kwh"] == 0.0; }, 5s);
    REQUIRE(reset);
    CHECK(json::parse(reset->payload)["lifetime_energy_kwh"] == 3000.4);
    CHECK(json::parse(reset->payload)["timestamp"] == "2024-06-21T23:55:00");
    CHECK(probe.count([](const test::Received& m) { return !m.payload.empty(); }) == 1);
    require_lifetime_never_decreases(probe);
    std::filesystem::remove_all(dir);
}

TEST_CASE("a forged lifetime is answered, kept out of the state and the history, and forgotten") {
    test::MosquittoBroker broker;
    const auto dir = test::make_temp_dir("ecu2mqtt-ledger");
    test::MqttProbe probe(broker.url(), "ecu2mqtt/" + kEcu + "/#");
    test::FixedClock clock({2024, 6, 21, 10, 0, 5});
    test::RunningPublisher publisher(broker.url(), dir / "state", clock);
    publisher.upload(reading("20240621100000", 10000));
    clock.set({2024, 6, 21, 10, 5, 5});
    publisher.upload(reading("20240621100500", 10001));

    clock.set({2024, 6, 21, 10, 7, 5});
    const auto forged = publisher.upload(reading("20240621100700", 9999999));
    CHECK(forged.handled);
    CHECK(forged.counter_suspect);
    CHECK_FALSE(forged.live);
    CHECK_FALSE(forged.resend_from);
    clock.set({2024, 6, 21, 10, 10, 5});
    CHECK(publisher.upload(reading("20240621101000", 10004)).live);
    const auto live = probe.wait_for_payload(kState, [](const std::string& p) {
        return json::parse(p)["timestamp"] == "2024-06-21T10:10:00";
    });
    REQUIRE(live);
    CHECK(json::parse(live->payload)["lifetime_energy_kwh"] == 1000.4);
    CHECK(json::parse(live->payload)["today_energy_kwh"] == 0.4);
    for (const auto& state : payloads_on(probe, kState))
        CHECK(state["timestamp"] != "2024-06-21T10:07:00");
    CHECK(payloads_on(probe, kHistory).empty());
    require_lifetime_never_decreases(probe);
    CHECK(test::query_number(dir / "state", "SELECT count(*) FROM power_points WHERE lifetime_kwh "
                                            "> 2000") == 0);
    CHECK(publisher.log().find("event=upload_counter_suspect ecu=" + kEcu) != std::string::npos);
    std::filesystem::remove_all(dir);
}

} // namespace test_publisher_ledger
