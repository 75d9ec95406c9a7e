// A flood of made-up ECU ids from the LAN while a real ECU is quiet, against the real binary and
// a real Mosquitto: the real ECU keeps its slot, its devices, state and stored ledger.
#include "support/minute_uploads.hpp"
#include "support/mqtt_probe.hpp"
#include "support/service_process.hpp"
#include "support/store_probe.hpp"
#include "support/temp_dir.hpp"
#include "support/upload_builder.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace std::chrono_literals;
using nlohmann::json;

namespace test_id_flood {
namespace {

const std::string kRealEcu = "216000064136"; // the captured ECU
constexpr int kMadeUpIds = 2000;

std::string made_up_id(int n) {
    return "2160009" + test::zero_padded(n, 5);
}

// One upload of a made-up id, as a flood sends it: plausible, with one inverter.
std::string made_up_upload(int n) {
    test::UploadSpec spec;
    spec.ecu_id = made_up_id(n);
    spec.timestamp = test::stamp_at_minute(10);
    spec.inverters = {test::inverter_with("8069" + test::zero_padded(n, 8), 4, 50)};
    spec.centiwatts = 20000;
    spec.decikwh = 10000 + n;
    return test::build_upload(spec);
}

std::size_t occurrences(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
        ++n;
    return n;
}

} // namespace

TEST_CASE("a flood of made-up ids does not evict a real ECU that is offline; it is accepted and "
          "published when it comes back") {
    test::MosquittoBroker broker;
    test::TempDir dir("ecu2mqtt-flood");
    const auto state_dir = dir.path / "state";
    test::MqttProbe probe(broker.url(), "#");
    test::ServiceProcess service(broker.url(), state_dir,
                                 {"--max-ecus", "4", "--ecu-timeout", "1"});
    const std::string availability = "ecu2mqtt/" + kRealEcu + "/availability";
    const std::string device_config = "homeassistant/device/ecu2mqtt_" + kRealEcu + "/config";

    // A few uploads: a history.
    for (int minute = 0; minute < 4; ++minute)
        REQUIRE(test::upload(service.port(), test::upload_at_minute(minute)) ==
                test::reply_for_minute(minute));
    REQUIRE(probe.wait_for_payload(test::kCapturedEcuState, [](const std::string& p) {
        return json::parse(p)["timestamp"] == test::iso_at_minute(3);
    }));
    REQUIRE(test::wait_for_number(
                state_dir, "SELECT count(*) FROM kept_readings WHERE ecu_id = '" + kRealEcu + "'",
                4) == 4);
    // Quiet past --ecu-timeout: offline, as at night.
    REQUIRE(probe.wait_for_payload(
        availability, [](const std::string& p) { return p == "offline"; }, 5s));

    const auto flood = [&](int from, int to) {
        for (int n = from; n < to; ++n) {
            INFO("made-up id " << made_up_id(n));
            // Answered like any upload, so that a real ECU among them would not retry.
            REQUIRE(test::upload(service.port(), made_up_upload(n)).starts_with("101"));
        }
    };
    const auto flood_start = std::chrono::steady_clock::now();
    flood(0, kMadeUpIds / 2);
    // The first ids took the three free slots; once they are offline too, the rest of the
    // flood finds them and the real ECU offline.
    REQUIRE(service.process().wait_for_output("event=ecu_offline ecu=" + made_up_id(2), 5s));
    flood(kMadeUpIds / 2, kMadeUpIds);
    const auto flood_minutes = std::chrono::duration_cast<std::chrono::minutes>(
                                   std::chrono::steady_clock::now() - flood_start)
                                   .count();

    const auto log = service.log();
    CHECK(log.find("event=ecu_forgotten ecu=" + kRealEcu) == std::string::npos);
    CHECK(log.find("event=ecu_limit_reached") != std::string::npos);
    // Rate-limited: at most 10 a minute, not one per made-up id.
    CHECK(occurrences(log, "event=ecu_limit_reached") <= 10 * std::size_t(flood_minutes + 2));
    // The ids seen once made room for each other, never for the real ECU's history.
    CHECK(log.find("event=ecu_forgotten ecu=" + made_up_id(0)) != std::string::npos);
    // What was refused is kept raw, within the store's bounds for raw messages.
    const auto raw = test::query_number(state_dir, "SELECT count(*) FROM raw_messages");
    CHECK(raw > 0);
    CHECK(raw <= 1000);

    // Its stored ledger, devices and state are all still there.
    CHECK(test::query_number(state_dir, "SELECT count(*) FROM ecu_state WHERE ecu_id = '" +
                                            kRealEcu + "'") == 1);
    CHECK(test::query_number(state_dir, "SELECT count(*) FROM kept_readings WHERE ecu_id = '" +
                                            kRealEcu + "'") == 4);
    {
        test::MqttProbe retained(broker.url(), "#", "retained");
        const auto config = retained.wait_for_topic(device_config);
        REQUIRE(config);
        CHECK(config->retained);
        CHECK_FALSE(config->payload.empty());
        const auto state = retained.wait_for_topic(test::kCapturedEcuState);
        REQUIRE(state);
        CHECK(json::parse(state->payload)["timestamp"] == test::iso_at_minute(3));
    }

    // Back after the flood: accepted and published at once, its history intact.
    probe.clear();
    REQUIRE(test::upload(service.port(), test::upload_at_minute(4)) == test::reply_for_minute(4));
    const auto state = probe.wait_for_payload(test::kCapturedEcuState, [](const std::string& p) {
        return json::parse(p)["timestamp"] == test::iso_at_minute(4);
    });
    REQUIRE(state);
    CHECK(json::parse(state->payload)["lifetime_energy_kwh"] == Approx(2128.3));
    CHECK(probe.wait_for_payload(availability, [](const std::string& p) { return p == "online"; }));
    CHECK(service.log().find("event=ecu_limit_reached ecu=" + kRealEcu) == std::string::npos);
    CHECK(test::wait_for_number(
              state_dir, "SELECT count(*) FROM kept_readings WHERE ecu_id = '" + kRealEcu + "'",
              5) == 5);
}

TEST_CASE("a made-up id reporting a real ECU's inverter does not take over its device") {
    test::MosquittoBroker broker;
    test::TempDir dir("ecu2mqtt-claim");
    test::MqttProbe probe(broker.url(), "#");
    test::ServiceProcess service(broker.url(), dir.path / "state");
    for (int minute = 0; minute < 4; ++minute)
        REQUIRE(test::upload(service.port(), test::upload_at_minute(minute)) ==
                test::reply_for_minute(minute));
    const std::string real_qs1 = "806000011223"; // in the captured upload
    const std::string config = "homeassistant/device/ecu2mqtt_" + real_qs1 + "/config";
    const auto owned_by_real_ecu = [](const std::string& p) {
        return p.find("\"via_device\":\"ecu2mqtt_" + kRealEcu + "\"") != std::string::npos;
    };
    REQUIRE(probe.wait_for_payload(config, owned_by_real_ecu));

    // A new id from the LAN with the real QS1's serial number.
    const std::string forger = "216000999999";
    test::UploadSpec spec;
    spec.ecu_id = forger;
    spec.timestamp = test::stamp_at_minute(5);
    spec.inverters = {test::inverter_with(real_qs1, 4, 123)};
    spec.centiwatts = 49200;
    spec.decikwh = 100;
    REQUIRE(test::upload(service.port(), test::build_upload(spec)).starts_with("101"));
    CHECK(
        service.process().wait_for_output("event=inverter_held_by_another_ecu ecu=" + forger, 5s));
    REQUIRE(probe.wait_for_topic("ecu2mqtt/" + forger + "/state")); // the forger's own reading

    std::string newest_config;
    for (const auto& m : probe.messages())
        if (m.topic == config)
            newest_config = m.payload;
    CHECK(owned_by_real_ecu(newest_config));
    CHECK(probe.count([&](const test::Received& m) {
        return m.topic.starts_with("ecu2mqtt/" + forger + "/" + real_qs1);
    }) == 0);

    // An "inverter" numbered like the real ECU would turn the ECU's device, with its energy
    // sensors, into an inverter's.
    spec.ecu_id = "216000999998";
    spec.inverters = {test::inverter_with(kRealEcu, 4, 123)};
    REQUIRE(test::upload(service.port(), test::build_upload(spec)).starts_with("101"));
    CHECK(service.process().wait_for_output("event=inverter_held_by_another_ecu ecu=216000999998",
                                            5s));
    REQUIRE(probe.wait_for_topic("ecu2mqtt/216000999998/state"));
    std::string ecu_config;
    for (const auto& m : probe.messages())
        if (m.topic == "homeassistant/device/ecu2mqtt_" + kRealEcu + "/config")
            ecu_config = m.payload;
    CHECK_THAT(ecu_config, Catch::Contains("lifetime_energy"));
    CHECK(ecu_config.find("216000999998") == std::string::npos);
}

} // namespace test_id_flood
