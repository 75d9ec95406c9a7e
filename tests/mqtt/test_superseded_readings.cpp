// Lost acknowledgements without reading the broker back: after a reconnect an older state sent
// on the lost connection goes to the history topic, so no state topic steps back.
#include "ecu2mqtt/mqtt/outbox.hpp"
#include "ecu2mqtt/mqtt/superseded_readings.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace ecu2mqtt;

namespace test_superseded_readings {
namespace {

const TopicScheme kTopics{};

// A reading of ECU "e1" at `minute`: its inverter's state, its own state and a receipt.
std::vector<OutgoingMessage> reading_at(int minute) {
    const auto time = "2026-01-01T10:0" + std::to_string(minute) + ":00";
    return {
        {kTopics.inverter_state("e1", "u1"), R"({"timestamp":")" + time + R"(","power_w":1})",
         true},
        {kTopics.ecu_state("e1"),
         R"({"timestamp":")" + time + R"(","lifetime_energy_kwh":)" + std::to_string(minute) +
             R"(,"today_energy_kwh":1})",
         true},
        {kTopics.base + "/bridge/delivered", std::to_string(minute), true},
    };
}

std::vector<Outbox::Send> drain(Outbox& box) {
    std::vector<Outbox::Send> sends;
    while (auto s = box.next())
        sends.push_back(*s);
    return sends;
}

auto to_history() {
    return
        [](const std::vector<OutgoingMessage>& old) { return history_of_superseded(kTopics, old); };
}

} // namespace

TEST_CASE("after lost acknowledgements only the newest state per topic goes out again; the "
          "older reading goes to history") {
    Outbox box(64);
    box.put_reading(1, reading_at(1));
    box.put_reading(2, reading_at(2));
    REQUIRE(drain(box).size() == 6); // both on the wire, then the connection goes
    box.connection_reset();
    CHECK(box.supersede_unconfirmed(to_history()) == 3);
    const auto again = drain(box);
    REQUIRE(again.size() == 4);
    CHECK(again[0].message->topic == kTopics.history("e1"));
    CHECK_FALSE(again[0].message->retain);
    const auto history = nlohmann::json::parse(again[0].message->payload);
    CHECK(history["timestamp"] == "2026-01-01T10:01:00");
    CHECK_FALSE(history.contains("today_energy_kwh"));
    CHECK(history["inverters"]["u1"]["timestamp"] == "2026-01-01T10:01:00");
    for (std::size_t i = 1; i < again.size(); ++i) // the newest reading, as before
        CHECK(again[i].message->payload.find('2') != std::string::npos);
    // Reading 1 completes with its history message.
    CHECK(box.acknowledged(again[0].id) == std::vector<std::uint64_t>{1});
}

TEST_CASE("readings never sent, and a single unacknowledged one, go out as they are") {
    Outbox box(3);
    box.put_reading(1, reading_at(1));
    box.put_reading(2, reading_at(2));
    REQUIRE(drain(box).size() == 3); // reading 1 on the wire, reading 2 not sent
    box.connection_reset();
    // Reading 2 was never sent, so the broker cannot hold it: reading 1 again steps nothing back.
    CHECK(box.supersede_unconfirmed(to_history()) == 0);
    Outbox fresh(64);
    fresh.put_reading(1, reading_at(1));
    fresh.put_reading(2, reading_at(2));
    fresh.connection_reset();
    CHECK(fresh.supersede_unconfirmed(to_history()) == 0);
    Outbox single(64);
    single.put_reading(1, reading_at(1));
    REQUIRE(drain(single).size() == 3);
    single.connection_reset();
    CHECK(single.supersede_unconfirmed(to_history()) == 0);
}

} // namespace test_superseded_readings
