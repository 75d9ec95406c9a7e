// The weak-panel hint from the real binary to a real Mosquitto: the retained state and the Home
// Assistant diagnostic binary_sensor, and the line in /api/status.
#include "support/http_client.hpp"
#include "support/mosquitto_broker.hpp"
#include "support/mqtt_probe.hpp"
#include "support/net.hpp"
#include "support/service_process.hpp"
#include "support/test_paths.hpp"
#include "support/upload_builder.hpp"

#include <catch2/catch.hpp>
#include <ctime>
#include <nlohmann/json.hpp>
#include <regex>

using namespace std::chrono_literals;
using nlohmann::json;

namespace test_weak_panel_entity {
namespace {

const std::string kEcu = "216000064136";

// How far the ECU's clock is ahead of UTC (within 12 hours either way, as a time zone's) for
// it to show 14:12 now: the uploads of the last two hours are on both sides of its midday, as
// the hint wants them.
std::int64_t ecu_clock_ahead_s() {
    constexpr std::int64_t kDay = 86400;
    const std::int64_t wanted = 14 * 3600 + 12 * 60;
    const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr)) % kDay;
    return ((wanted - now) % kDay + kDay + kDay / 2) % kDay - kDay / 2;
}

// Two QS1 with every channel at 250 W but the second inverter's channel 3 at 100 W, stamped
// `seconds_ago` by the ECU's clock, `ahead_s` ahead of UTC.
std::string sunny_upload(std::int64_t seconds_ago, long long decikwh, std::int64_t ahead_s) {
    test::UploadSpec spec;
    spec.ecu_id = kEcu;
    spec.timestamp = test::utc_stamp(seconds_ago - ahead_s);
    spec.decikwh = decikwh;
    spec.centiwatts = 190000;
    auto weak = test::inverter_with("806000000002", 4, 250);
    weak.channels[2] = test::inverter_with("x", 1, 100).channels[0];
    spec.inverters = {test::inverter_with("806000000001", 4, 250), weak};
    return test::build_upload(spec);
}

const char* const kWeakInverter = "806000000002";

std::string inverter_config_topic(const std::string& uid) {
    return "homeassistant/device/ecu2mqtt_" + uid + "/config";
}

// The inverter an entity's value_template picks from the hint's channels.
std::string template_inverter(const std::string& value_template) {
    static const std::regex picked(R"(selectattr\('inverter', 'eq', '([0-9A-Za-z]+)'\))");
    std::smatch match;
    return std::regex_search(value_template, match, picked) ? match[1].str() : "";
}

// What that template gives: ON when the hint lists a channel of the inverter.
std::string hint_for(const json& hint, const std::string& uid) {
    for (const auto& channel : hint["channels"])
        if (channel["inverter"] == uid)
            return "ON";
    return "OFF";
}

} // namespace

TEST_CASE("weak panel: a channel at 40 % of its neighbours for two sunny hours reaches Home "
          "Assistant as a diagnostic problem binary_sensor, retained, and /api/status") {
    test::MosquittoBroker broker;
    const auto dir = test::make_temp_dir("ecu2mqtt-weak-panel");
    const auto http_port = test::free_port();
    test::ServiceProcess service(broker.url(), dir / "state",
                                 {"--http-listen", "127.0.0.1:" + std::to_string(http_port)});
    const std::string state_topic = "ecu2mqtt/" + kEcu + "/weak_panels";
    const std::string config_topic =
        "homeassistant/binary_sensor/ecu2mqtt_" + kEcu + "/weak_panel/config";

    // 26 five-minute uploads, the last five minutes ago: 12:02 to 14:07 by the ECU's clock.
    constexpr int kUploads = 26;
    const auto ahead_s = ecu_clock_ahead_s();
    for (int n = 0; n < kUploads; ++n) {
        REQUIRE(test::upload(service.port(), sunny_upload((kUploads - n) * 300, 10000 + n, ahead_s))
                    .size() == 17);
        if (n == 0) { // one upload says nothing yet: published, and OK
            test::MqttProbe first(broker.url(), "#", "first");
            const auto ok = first.wait_for_payload(state_topic, [](const std::string& p) {
                return json::parse(p)["problem"] == "OFF";
            });
            CHECK(ok);
            // The inverters are announced without their "Weak panel" entity as yet.
            const auto inverter =
                first.wait_for_payload(inverter_config_topic(kWeakInverter),
                                       [](const std::string& p) { return !p.empty(); });
            REQUIRE(inverter);
            CHECK_FALSE(json::parse(inverter->payload)["cmps"].contains("weak_panel"));
        }
    }

    test::MqttProbe probe(broker.url(), "#", "after");
    const auto state = probe.wait_for_payload(
        state_topic, [](const std::string& p) { return json::parse(p)["problem"] == "ON"; }, 10s);
    REQUIRE(state);
    CHECK(state->retained);
    const auto channels = json::parse(state->payload)["channels"];
    REQUIRE(channels.size() == 1);
    CHECK(channels[0]["inverter"] == "806000000002");
    CHECK(channels[0]["channel"] == 3);
    CHECK(channels[0]["ratio"].get<double>() == Approx(0.4).margin(0.01));
    CHECK(channels[0]["sunny_moments"].get<int>() >= 24);

    const auto config =
        probe.wait_for_payload(config_topic, [](const std::string& p) { return !p.empty(); });
    REQUIRE(config);
    CHECK(config->retained);
    const auto entity = json::parse(config->payload);
    CHECK(entity["device_class"] == "problem");
    CHECK(entity["entity_category"] == "diagnostic");
    CHECK(entity["state_topic"] == state_topic);
    CHECK(entity["value_template"] == "{{ value_json.problem }}");
    CHECK(entity["unique_id"] == "ecu2mqtt_" + kEcu + "_weak_panel");
    CHECK(entity["device"]["identifiers"][0] == "ecu2mqtt_" + kEcu);
    CHECK_FALSE(entity.contains("object_id"));

    // Each inverter's device has its own "Weak panel", read from the same retained topic:
    // evaluated here as its template does, on the payload published.
    for (const auto& [uid, expected] : {std::pair{std::string(kWeakInverter), "ON"},
                                        std::pair{std::string("806000000001"), "OFF"}}) {
        INFO("inverter " << uid);
        const auto inverter =
            probe.wait_for_payload(inverter_config_topic(uid), [](const std::string& p) {
                return !p.empty() && json::parse(p)["cmps"].contains("weak_panel");
            });
        REQUIRE(inverter);
        CHECK(inverter->retained);
        const auto component = json::parse(inverter->payload)["cmps"]["weak_panel"];
        CHECK(component["p"] == "binary_sensor");
        CHECK(component["device_class"] == "problem");
        CHECK(component["entity_category"] == "diagnostic");
        CHECK(component["state_topic"] == state_topic);
        CHECK(component["unique_id"] == "ecu2mqtt_" + uid + "_weak_panel");
        const auto listed_inverter = template_inverter(component["value_template"]);
        CHECK(listed_inverter == uid);
        CHECK(hint_for(json::parse(state->payload), listed_inverter) == expected);
    }

    const auto status = json::parse(test::http_get(http_port, "/api/status").body);
    const auto weak = status["ecus"][0]["weak_panels"];
    REQUIRE(weak.size() == 1);
    CHECK(weak[0]["channel"] == 3);
    CHECK_THAT(weak[0]["line"].get<std::string>(),
               Catch::Contains("inverter 806000000002 channel 3 gives 40 %"));
    std::filesystem::remove_all(dir);
}

TEST_CASE("weak panel: after a restart in the middle of a sunny stretch the hint goes on from "
          "the stored channel powers") {
    test::MosquittoBroker broker;
    const auto dir = test::make_temp_dir("ecu2mqtt-weak-panel-restart");
    const std::string state_topic = "ecu2mqtt/" + kEcu + "/weak_panels";
    // 26 five-minute uploads, 12:02 to 14:07 by the ECU's clock, 12 before its midday and 14
    // after: 16 before the restart, 10 after it. The hint is on by the 8th after it, when 12
    // are after midday; without what came before the restart, those 10 are not a whole sunny
    // stretch (24), nor do they reach back before midday.
    constexpr int kUploads = 26;
    constexpr int kBeforeRestart = 16;
    const auto ahead_s = ecu_clock_ahead_s();
    const auto send = [&](const test::ServiceProcess& service, int n) {
        REQUIRE(test::upload(service.port(), sunny_upload((kUploads - n) * 300, 10000 + n, ahead_s))
                    .size() == 17);
    };
    {
        test::ServiceProcess first(broker.url(), dir / "state");
        for (int n = 0; n < kBeforeRestart; ++n)
            send(first, n);
        test::MqttProbe probe(broker.url(), state_topic, "before");
        const auto state = probe.wait_for_payload(
            state_topic, [](const std::string& p) { return json::parse(p)["problem"] == "OFF"; });
        CHECK(state); // not yet a whole stretch on both sides of midday
    }
    test::ServiceProcess second(broker.url(), dir / "state");
    for (int n = kBeforeRestart; n < kUploads; ++n)
        send(second, n);
    test::MqttProbe probe(broker.url(), state_topic, "after");
    const auto state = probe.wait_for_payload(
        state_topic, [](const std::string& p) { return json::parse(p)["problem"] == "ON"; }, 10s);
    REQUIRE(state);
    const auto channels = json::parse(state->payload)["channels"];
    REQUIRE(channels.size() == 1);
    CHECK(channels[0]["inverter"] == "806000000002");
    CHECK(channels[0]["channel"] == 3);
    // Published when it turned on: 16 moments from before the restart, 8 after it.
    CHECK(channels[0]["sunny_moments"].get<int>() == 24);
    std::filesystem::remove_all(dir);
}

} // namespace test_weak_panel_entity
