#include "ecu2mqtt/mqtt/polled_facts.hpp"
#include "ecu2mqtt/net/ecu_poller.hpp"
#include "support/port8899_fixtures.hpp"

#include <algorithm>
#include <catch2/catch.hpp>

using namespace ecu2mqtt;

namespace test_polled_facts {
namespace {

constexpr std::int64_t kPolledAt = 1'718'964'005; // 2024-06-21 10:00:05 UTC

PolledEcuFacts facts_of_the_qt2_plant() {
    PolledEcuFacts facts;
    const auto info = decode_local_ecu_info(test::port8899_reply("ksh210_ecu-r2160_qt2_0001.hex"));
    const auto realtime =
        decode_local_realtime(test::port8899_reply("ksh210_ecu-r2160_qt2_0002.hex"));
    const auto signals =
        decode_local_signal_levels(test::port8899_reply("ksh210_ecu-r2160_qt2_0030.hex"));
    REQUIRE(local_reply(info));
    REQUIRE(local_reply(realtime));
    REQUIRE(local_reply(signals));
    merge_ecu_info(facts, *local_reply(info));
    merge_realtime(facts, *local_reply(realtime), kPolledAt);
    merge_signal_levels(facts, *local_reply(signals), kPolledAt);
    return facts;
}

} // namespace

TEST_CASE("polled ECU facts add firmware, time zone and registered inverters", "[polled]") {
    const auto facts = facts_of_the_qt2_plant();
    nlohmann::json state{{"id", "216000000001"}, {"power_w", 398.0}};
    add_polled_ecu_keys(state, facts);
    CHECK(state["firmware"] == "ECU_R_1.3.6C");
    CHECK(state["time_zone"] == "Etc/GMT-8");
    CHECK(state["inverters_registered"] == 6);
    CHECK(state["power_w"] == 398.0);

    nlohmann::json untouched{{"id", "216000000001"}};
    add_polled_ecu_keys(untouched, PolledEcuFacts{});
    CHECK(untouched.size() == 1); // polling off: nothing added
}

TEST_CASE("polled inverter keys are spliced into the state text as valid JSON", "[polled]") {
    const auto facts = facts_of_the_qt2_plant();
    REQUIRE(facts.inverters.size() == 6);
    const auto& qt2 = facts.inverters.at("901000000001");
    std::string payload = R"({"uid":"901000000001","power_w":79.0})";
    append_polled_inverter_keys(payload, qt2, kPolledAt);
    const auto parsed = nlohmann::json::parse(payload);
    CHECK(parsed["signal_level"] == 170);
    CHECK(parsed["ac_voltage_l1_v"] == 389.0);
    CHECK(parsed["ac_voltage_l2_v"] == 394.0);
    CHECK(parsed["ac_voltage_l3_v"] == 393.0);
    CHECK_FALSE(parsed.contains("ac_voltage_v"));
    CHECK(parsed["power_w"] == 79.0);

    PolledInverterFacts single{std::nullopt, {std::nullopt}}; // offline: voltage unknown
    std::string dark = R"({"uid":"409000000039"})";
    append_polled_inverter_keys(dark, single, 0);
    const auto dark_json = nlohmann::json::parse(dark);
    CHECK(dark_json["ac_voltage_v"].is_null());
    CHECK_FALSE(dark_json.contains("signal_level"));

    std::string unchanged = R"({"uid":"1"})";
    append_polled_inverter_keys(unchanged, PolledInverterFacts{}, kPolledAt);
    CHECK(unchanged == R"({"uid":"1"})");
}

TEST_CASE("polled inverter values last polled before the fresh bound are published as unknown",
          "[polled]") {
    const auto facts = facts_of_the_qt2_plant();
    const auto& qt2 = facts.inverters.at("901000000001");
    CHECK(qt2.signal_level_at == kPolledAt);
    CHECK(qt2.ac_voltage_at == kPolledAt);

    std::string stale = R"({"uid":"901000000001","power_w":79.0})";
    append_polled_inverter_keys(stale, qt2, kPolledAt + 1);
    const auto parsed = nlohmann::json::parse(stale);
    // The keys stay (their entities too), with no value: not the last number seen.
    REQUIRE(parsed.contains("signal_level"));
    CHECK(parsed["signal_level"].is_null());
    for (const char* key : {"ac_voltage_l1_v", "ac_voltage_l2_v", "ac_voltage_l3_v"}) {
        INFO(key);
        REQUIRE(parsed.contains(key));
        CHECK(parsed[key].is_null());
    }
    CHECK(parsed["power_w"] == 79.0);

    // Each value has its own age: a signal reply without a real-time one keeps only the signal.
    PolledInverterFacts half = qt2;
    half.signal_level_at = kPolledAt + 600;
    std::string mixed = R"({"uid":"901000000001"})";
    append_polled_inverter_keys(mixed, half, kPolledAt + 1);
    const auto mixed_json = nlohmann::json::parse(mixed);
    CHECK(mixed_json["signal_level"] == 170);
    CHECK(mixed_json["ac_voltage_l1_v"].is_null());
}

TEST_CASE("polled facts show alike whenever their values were polled", "[polled]") {
    const auto facts = facts_of_the_qt2_plant();
    auto later = facts;
    for (auto& [uid, inverter] : later.inverters)
        inverter.signal_level_at = inverter.ac_voltage_at = kPolledAt + 300;
    CHECK(later != facts);
    CHECK(same_values(later, facts));
    later.inverters.at("901000000001").signal_level = 171;
    CHECK_FALSE(same_values(later, facts));
}

TEST_CASE("discovery: firmware as sw_version, diagnostic sensors for the polled keys", "[polled]") {
    const auto facts = facts_of_the_qt2_plant();
    const TopicScheme topics;
    auto ecu = ecu_discovery(topics, "216000000001", "ECU-R", "0.1.0");
    add_polled_ecu_discovery(ecu, facts);
    CHECK(ecu.payload["device"]["sw_version"] == "ECU_R_1.3.6C");
    CHECK(ecu.payload["origin"]["sw_version"] == "0.1.0");
    for (const char* key : {"firmware", "time_zone", "inverters_registered"}) {
        INFO(key);
        REQUIRE(ecu.payload["cmps"].contains(key));
        CHECK(ecu.payload["cmps"][key]["entity_category"] == "diagnostic");
        CHECK(ecu.payload["cmps"][key]["value_template"] ==
              std::string("{{ value_json.") + key + " }}");
    }

    KnownInverter qt2{"901000000001", "901", "QT2", 4};
    auto inverter = inverter_discovery(topics, "216000000001", qt2, "0.1.0");
    add_polled_inverter_discovery(inverter, qt2.uid, facts.inverters.at(qt2.uid));
    const auto& cmps = inverter.payload["cmps"];
    REQUIRE(cmps.contains("signal_level"));
    CHECK(cmps["signal_level"]["unique_id"] == "ecu2mqtt_901000000001_signal_level");
    CHECK(cmps["signal_level"]["entity_category"] == "diagnostic");
    REQUIRE(cmps.contains("ac_voltage_l3"));
    CHECK(cmps["ac_voltage_l3"]["value_template"] == "{{ value_json.ac_voltage_l3_v }}");
    CHECK(cmps["ac_voltage_l3"]["unit_of_measurement"] == "V");

    auto plain = ecu_discovery(topics, "216000000001", "ECU-R", "0.1.0");
    const auto before = plain.payload;
    add_polled_ecu_discovery(plain, PolledEcuFacts{});
    CHECK(plain.payload == before); // polling off: the discovery is as it was
}

TEST_CASE("the --poll-ecus value: off, auto, or IP addresses with port 8899 by default",
          "[polled]") {
    CHECK(parse_poll_ecus("").targets.empty());
    CHECK_FALSE(parse_poll_ecus("off").from_uploads);
    CHECK(parse_poll_ecus("auto").from_uploads);
    const auto two = parse_poll_ecus("192.168.1.20,[fd00::5]:9000");
    REQUIRE(two.targets.size() == 2);
    CHECK(two.targets[0].host == "192.168.1.20");
    CHECK(two.targets[0].port == 8899);
    CHECK(two.targets[1].host == "fd00::5");
    CHECK(two.targets[1].port == 9000);
    CHECK_THROWS_AS(parse_poll_ecus("ecu.local"), std::invalid_argument);
    CHECK_THROWS_AS(parse_poll_ecus("192.168.1.20:0"), std::invalid_argument);
    CHECK_THROWS_AS(parse_poll_ecus("192.168.1.20,"), std::invalid_argument);
}

TEST_CASE("what a port 8899 answer may add is bounded: no junk names, no endless inverters",
          "[polled]") {
    PolledEcuFacts facts;
    LocalEcuInfo info;
    info.firmware = "ECU_R_1.3.6C";
    info.time_zone = "Europe/Amsterdam";
    merge_ecu_info(facts, info);
    CHECK(facts.firmware == "ECU_R_1.3.6C");
    CHECK(facts.time_zone == "Europe/Amsterdam");

    // Later answers that would publish a path, a control byte or a text Home Assistant refuses
    // leave the last good values.
    for (const auto* zone : {"../../etc/passwd", "/etc/localtime", "Europe/Am\nsterdam"}) {
        info.time_zone = zone;
        info.firmware = std::string(300, 'x');
        merge_ecu_info(facts, info);
        CHECK(facts.time_zone == "Europe/Amsterdam");
        CHECK(facts.firmware == "ECU_R_1.3.6C");
    }

    info.inverters_registered = 24;
    merge_ecu_info(facts, info);
    REQUIRE(facts.inverters_registered == 24);
    info.inverters_registered = 65535; // a garbled count: unknown, not the old one for good
    const auto refused = merge_ecu_info(facts, info);
    CHECK_FALSE(facts.inverters_registered);
    CHECK(std::find(refused.begin(), refused.end(),
                    "inverters registered 65535 is more than an ECU holds (1000)") !=
          refused.end());

    LocalSignalLevels flood;
    for (int i = 0; i < 5000; ++i)
        flood.levels.push_back({std::to_string(100000000000LL + i), 100});
    merge_signal_levels(facts, flood, kPolledAt);
    CHECK(facts.inverters.size() == 256);
}

TEST_CASE("polled facts survive their store record, ages included, and a broken one gives none",
          "[polled]") {
    auto facts = facts_of_the_qt2_plant();
    facts.inverters["409000000039"] = {std::nullopt, {std::nullopt}, 0, kPolledAt - 60};
    const auto record = polled_facts_record(facts);
    const auto back = polled_facts_from_record(nlohmann::json::parse(record.dump()));
    CHECK(back == facts);
    CHECK(back.inverters.at("901000000001").signal_level_at == kPolledAt);

    CHECK(polled_facts_from_record(nlohmann::json::object()) == PolledEcuFacts{});
    auto broken = record;
    broken["inverters"]["901000000001"]["signal_level"] = "strong";
    CHECK(polled_facts_from_record(broken) == PolledEcuFacts{});
}

TEST_CASE("only zone names of the form Area/City or Etc/ are published, each refusal said",
          "[polled]") {
    PolledEcuFacts facts;
    LocalEcuInfo info;
    for (const auto* zone : {"Europe/Amsterdam", "Etc/GMT-8", "America/Argentina/Buenos_Aires",
                             "America/Port-au-Prince"}) {
        info.time_zone = zone;
        CHECK(merge_ecu_info(facts, info).empty());
        CHECK(facts.time_zone == zone);
    }
    // Links to the host's own zone, no zone, other leap-second rules, no area, a path.
    for (const auto* zone :
         {"localtime", "posixrules", "Factory", "right/Europe/Amsterdam", "posix/Europe/Amsterdam",
          "UTC", "Europe/", "Europe//Amsterdam", "Etc/../localtime"}) {
        INFO(zone);
        info.time_zone = zone;
        const auto refused = merge_ecu_info(facts, info);
        REQUIRE(refused.size() == 1);
        CHECK(refused.front() == "time zone is not a zone name of the form Area/City or Etc/...");
        CHECK(facts.time_zone == "America/Port-au-Prince");
    }
}

TEST_CASE("firmware and zone text over 64 characters are refused with the reason", "[polled]") {
    PolledEcuFacts facts;
    LocalEcuInfo info;
    info.firmware = std::string(64, 'f');
    info.time_zone = "Europe/" + std::string(57, 'a'); // 64
    CHECK(merge_ecu_info(facts, info).empty());
    info.firmware = std::string(999, 'x');
    info.time_zone = "Europe/" + std::string(992, 'a');
    const auto refused = merge_ecu_info(facts, info);
    REQUIRE(refused.size() == 2);
    CHECK(refused[0] == "firmware longer than 64 characters (999)");
    CHECK(refused[1] == "time zone longer than 64 characters (999)");
    CHECK(facts.firmware == std::string(64, 'f'));
    CHECK(facts.time_zone->size() == 64);
    // A text the ECU left out (or the decoder dropped) is no refusal and keeps the last one.
    info.firmware.clear();
    info.time_zone.clear();
    CHECK(merge_ecu_info(facts, info).empty());
    CHECK(facts.firmware == std::string(64, 'f'));
}

} // namespace test_polled_facts
