#include "ecu2mqtt/protocol/decoder.hpp"
#include "ecu2mqtt/tools/solar_simulation.hpp"

#include <catch2/catch.hpp>

using namespace ecu2mqtt;

TEST_CASE("the simulated sun rises at six, peaks at one and sets at eight") {
    CHECK(solar_fraction({2024, 6, 21, 5, 59, 0}) == 0.0);
    CHECK(solar_fraction({2024, 6, 21, 13, 0, 0}) == Approx(1.0));
    CHECK(solar_fraction({2024, 6, 21, 9, 30, 0}) ==
          Approx(solar_fraction({2024, 6, 21, 16, 30, 0})));
    CHECK(solar_fraction({2024, 6, 21, 20, 0, 0}) == 0.0);
    CHECK_FALSE(ecu_uploads_at({2024, 6, 21, 23, 0, 0}, 21, 5));
    CHECK_FALSE(ecu_uploads_at({2024, 6, 21, 4, 55, 0}, 21, 5));
    CHECK(ecu_uploads_at({2024, 6, 21, 5, 0, 0}, 21, 5));
    CHECK(ecu_uploads_at({2024, 6, 21, 23, 0, 0}, 0, 0));
}

TEST_CASE("simulated uploads decode to what the simulation produced") {
    SimulatedEcu ecu("216000000001", {{"806000000001", 4}, {"408000000002", 2}}, 300, 1,
                     1000.0 * 1000);
    const auto noon = ecu.upload_at({2024, 6, 21, 13, 0, 0}, 300);
    const auto decoded = decode_message(noon);
    REQUIRE(decode_error(decoded) == nullptr);
    const auto& up = std::get<RealtimeUpload>(*decoded_message(decoded));
    CHECK(up.ecu_id == "216000000001");
    REQUIRE(up.inverters.size() == 2);
    CHECK(up.inverters[0].channels.size() == 4);
    CHECK(up.inverters[1].model == "YC600");
    CHECK(up.notes.empty()); // channel powers add up to the ECU's power
    for (const auto& inv : up.inverters)
        for (const auto& ch : inv.channels) {
            CHECK(ch.power_w >= 240); // 300 W peak x 0.8 ... 1.0
            CHECK(ch.power_w <= 300);
            CHECK(ch.voltage_v * ch.current_a == Approx(ch.power_w).epsilon(0.02));
        }
    // Five minutes at that power went into the lifetime counter and the day's tally.
    const double produced_kwh = up.power_w * 300 / 3600 / 1000;
    CHECK(ecu.produced_kwh_by_day().at("2024-06-21") == Approx(produced_kwh));
    CHECK(ecu.lifetime_wh() == Approx(1000.0 * 1000 + produced_kwh * 1000));
    CHECK(up.lifetime_energy_kwh == Approx(std::floor(ecu.lifetime_wh() / 100) / 10));

    const auto night = decode_message(ecu.upload_at({2024, 6, 21, 20, 30, 0}, 300));
    CHECK(std::get<RealtimeUpload>(*decoded_message(night)).inverters.empty());
}

TEST_CASE("the simulated ECU re-sends what followed the time the server names") {
    SimulatedEcu ecu("216000000001", {{"806000000001", 4}}, 300, 1);
    std::vector<std::string> sent;
    for (int m = 0; m <= 20; m += 5)
        sent.push_back(ecu.upload_at({2024, 6, 21, 12, m, 0}, 300));
    const auto again = ecu.resend_after({2024, 6, 21, 12, 5, 0}, {2024, 6, 21, 12, 20, 0});
    CHECK(again == std::vector<std::string>{sent[2], sent[3]});
}
