#include "ecu2mqtt/protocol/local_api.hpp"
#include "support/port8899_fixtures.hpp"

#include <catch2/catch.hpp>

using namespace ecu2mqtt;

namespace test_local_api {
namespace {

template <class Reply> Reply decoded(const LocalResult<Reply>& result) {
    if (const auto* error = local_error(result))
        FAIL("unexpected decode error: " << error->describe());
    return *local_reply(result);
}

template <class Reply> LocalApiError failed(const LocalResult<Reply>& result) {
    const auto* error = local_error(result);
    REQUIRE(error != nullptr);
    return *error;
}

// Physical sense for any inverter record: what is set must be a plausible grid reading.
void check_physical_sense(const LocalInverter& inverter) {
    INFO("inverter " << inverter.uid << " type " << inverter.type_code);
    CHECK(inverter.uid.size() == 12);
    if (inverter.frequency_hz) {
        const bool near_50 = *inverter.frequency_hz > 49 && *inverter.frequency_hz < 51;
        const bool near_60 = *inverter.frequency_hz > 59 && *inverter.frequency_hz < 61;
        CHECK((near_50 || near_60));
    }
    if (inverter.temperature_c) {
        CHECK(*inverter.temperature_c > -30);
        CHECK(*inverter.temperature_c < 90);
    }
    for (const auto& volts : inverter.ac_voltage_v)
        if (volts) {
            // Line-to-neutral (about 110–240 V) or line-to-line (about 380–415 V).
            const bool line_to_neutral = *volts > 100 && *volts < 260;
            const bool line_to_line = *volts > 360 && *volts < 430;
            CHECK((line_to_neutral || line_to_line));
        }
    for (const auto& watts : inverter.channel_power_w)
        if (watts) {
            CHECK(*watts >= 0);
            CHECK(*watts <= 600); // no channel of these families delivers more
        }
    if (!inverter.online) {
        CHECK_FALSE(inverter.frequency_hz);
        CHECK_FALSE(inverter.temperature_c);
        for (const auto& watts : inverter.channel_power_w)
            CHECK_FALSE(watts);
        for (const auto& volts : inverter.ac_voltage_v)
            CHECK_FALSE(volts);
    }
}

std::string with_length(std::string frame) {
    auto length = std::to_string(frame.size() - 1);
    length.insert(0, 4 - length.size(), '0');
    return frame.replace(5, 4, length);
}

} // namespace

TEST_CASE("the three requests are the peers' bytes exactly", "[local_api]") {
    CHECK(encode_local_request(LocalCommand::EcuInfo, "") == "APS1100160001END\n");
    CHECK(encode_local_request(LocalCommand::Realtime, "216000000001") ==
          "APS1100280002216000000001END\n");
    CHECK(encode_local_request(LocalCommand::SignalLevels, "216000000001") ==
          "APS1100280030216000000001END\n");
    CHECK_FALSE(encode_local_request(LocalCommand::Realtime, "21600000001"));
    CHECK_FALSE(encode_local_request(LocalCommand::SignalLevels, "21600000000x"));
}

TEST_CASE("every fixture passes the length rule and decodes by its command", "[local_api]") {
    const auto fixtures = test::port8899_fixtures();
    REQUIRE(fixtures.size() == 8);
    for (const auto& name : fixtures) {
        INFO(name);
        const auto reply = test::port8899_reply(name);
        REQUIRE(local_reply_size(reply) == reply.size());
        CHECK(local_reply_complete(reply));
        CHECK_FALSE(local_reply_complete(reply.substr(0, reply.size() - 5)));
        const auto command = reply.substr(9, 4);
        const bool error_reply = name.find("error") != std::string::npos;
        if (command == "0001") {
            CHECK(local_error(decode_local_ecu_info(reply)) == nullptr);
        } else if (command == "0002") {
            const auto result = decode_local_realtime(reply);
            CHECK((local_error(result) != nullptr) == error_reply);
            if (const auto* realtime = local_reply(result))
                for (const auto& inverter : realtime->inverters)
                    check_physical_sense(inverter);
        } else {
            REQUIRE(command == "0030");
            CHECK(local_error(decode_local_signal_levels(reply)) == nullptr);
        }
    }
}

TEST_CASE("ECU info of an ECU-R: firmware, time zone, counts, no last-EMA date", "[local_api]") {
    const auto info =
        decoded(decode_local_ecu_info(test::port8899_reply("ksh210_ecu-r2160_qt2_0001.hex")));
    CHECK(info.group == "11");
    CHECK(info.ecu_id == "216000000001");
    CHECK(info.lifetime_energy_kwh == Approx(4358.5));
    CHECK(info.last_power_w == Approx(398));
    CHECK(info.today_energy_kwh == Approx(0));
    CHECK_FALSE(info.last_ema_contact); // d0d0d0… is no date
    CHECK(info.inverters_registered == 6);
    CHECK(info.inverters_online == 6);
    CHECK(info.firmware == "ECU_R_1.3.6C");
    CHECK(info.time_zone == "Etc/GMT-8");
}

TEST_CASE("an unprintable firmware or zone text drops that text only", "[local_api]") {
    auto reply = test::port8899_reply("ksh210_ecu-r2160_qt2_0001.hex");
    const auto firmware_at = reply.find("ECU_R_1.3.6C");
    REQUIRE(firmware_at != std::string::npos);
    reply[firmware_at + 3] = '\x01'; // a control byte, the length unchanged
    const auto info = decoded(decode_local_ecu_info(reply));
    CHECK(info.ecu_id == "216000000001");
    CHECK(info.inverters_registered == 6);
    CHECK(info.firmware.empty());
    CHECK(info.time_zone == "Etc/GMT-8");
    REQUIRE(info.dropped.size() == 1);
    CHECK(info.dropped.front().reason == "firmware text is not printable");

    const auto zone_at = reply.find("Etc/GMT-8");
    REQUIRE(zone_at != std::string::npos);
    reply[zone_at + 3] = '\n';
    const auto both = decoded(decode_local_ecu_info(reply));
    CHECK(both.ecu_id == "216000000001");
    CHECK(both.time_zone.empty());
    CHECK(both.dropped.size() == 2);
}

TEST_CASE("ECU info of an ECU-R Pro answers in group 12", "[local_api]") {
    const auto info =
        decoded(decode_local_ecu_info(test::port8899_reply("rdr129_ecu-r-pro_ds3_0001.hex")));
    CHECK(info.group == "12");
    CHECK(info.ecu_id == "216200000002");
    CHECK(info.lifetime_energy_kwh == Approx(15144.9));
    CHECK(info.last_power_w == Approx(1349));
    CHECK(info.today_energy_kwh == Approx(1.39));
    REQUIRE(info.last_ema_contact);
    CHECK(format_iso(*info.last_ema_contact) == "2026-04-23T10:11:35");
    CHECK(info.inverters_registered == 6);
    CHECK(info.inverters_online == 6);
    CHECK(info.firmware == "ECU_R_PRO_2.1.29A");
    CHECK(info.time_zone == "Europe/Amsterdam");
}

TEST_CASE("real-time data of QT2s: 3-phase line-to-line voltages and four channels",
          "[local_api]") {
    const auto rt =
        decoded(decode_local_realtime(test::port8899_reply("ksh210_ecu-r2160_qt2_0002.hex")));
    REQUIRE(rt.ecu_time);
    CHECK(format_iso(*rt.ecu_time) == "2023-11-21T15:13:54");
    REQUIRE(rt.inverters.size() == 6);
    const auto& first = rt.inverters[0];
    CHECK(first.uid == "901000000001");
    CHECK(first.type_code == "02");
    CHECK(first.online);
    CHECK(first.frequency_hz == Approx(49.9));
    CHECK(first.temperature_c == Approx(17));
    REQUIRE(first.ac_voltage_v.size() == 3);
    CHECK(first.ac_voltage_v[0] == Approx(389));
    CHECK(first.ac_voltage_v[1] == Approx(394));
    CHECK(first.ac_voltage_v[2] == Approx(393));
    REQUIRE(first.channel_power_w.size() == 4);
    CHECK(first.channel_power_w[3] == Approx(19));
    double total = 0;
    for (const auto& inverter : rt.inverters)
        for (const auto& watts : inverter.channel_power_w)
            total += watts.value_or(0);
    CHECK(total == Approx(462)); // the README's figure for this moment
}

TEST_CASE("real-time data of YC600s at 60 Hz: offline and never-heard records", "[local_api]") {
    const auto rt =
        decoded(decode_local_realtime(test::port8899_reply("ksh79_ecu-r2160_yc600_0002.hex")));
    REQUIRE(rt.inverters.size() == 15);
    int offline = 0, never_heard = 0;
    for (const auto& inverter : rt.inverters) {
        if (inverter.type_code == "00") {
            ++never_heard;
            CHECK(inverter.channel_power_w.empty());
            continue;
        }
        CHECK(inverter.type_code == "01");
        REQUIRE(inverter.ac_voltage_v.size() == 1);
        if (!inverter.online) {
            ++offline;
            continue;
        }
        CHECK(inverter.frequency_hz == Approx(60).margin(0.2));
        CHECK(inverter.ac_voltage_v[0] > 235); // a US 240 V grid
    }
    CHECK(offline == 1);
    CHECK(never_heard == 1);
    // The offline YC600 reads 0 Hz and 0 °C (raw 100): unknown, not readings.
    const auto& dark = rt.inverters[12];
    CHECK(dark.uid == "409000000039");
    CHECK_FALSE(dark.frequency_hz);
    CHECK_FALSE(dark.temperature_c);
}

TEST_CASE("real-time data at night: every QS1 offline, every field unknown", "[local_api]") {
    const auto rt =
        decoded(decode_local_realtime(test::port8899_reply("ksh74_ecu-c_qs1_0002_night.hex")));
    REQUIRE(rt.inverters.size() == 9);
    for (std::size_t i = 0; i < 5; ++i) {
        CHECK(rt.inverters[i].type_code == "03");
        CHECK_FALSE(rt.inverters[i].online);
        CHECK(rt.inverters[i].channel_power_w.size() == 4);
        CHECK_FALSE(rt.inverters[i].temperature_c);
    }
    for (std::size_t i = 5; i < 9; ++i)
        CHECK(rt.inverters[i].type_code == "00");
}

TEST_CASE("real-time data of YC1000s: 3-phase line-to-neutral", "[local_api]") {
    const auto rt =
        decoded(decode_local_realtime(test::port8899_reply("ksh6_ecu-c_yc1000_0002.hex")));
    REQUIRE(rt.inverters.size() == 11);
    for (const auto& inverter : rt.inverters) {
        REQUIRE(inverter.ac_voltage_v.size() == 3);
        for (const auto& volts : inverter.ac_voltage_v)
            CHECK(*volts == Approx(235).margin(10));
        CHECK(inverter.frequency_hz == Approx(50).margin(0.3));
    }
    CHECK(rt.inverters[0].channel_power_w[0] == Approx(258));
}

TEST_CASE("signal levels are the raw bytes, for the uids of the real-time reply", "[local_api]") {
    const auto signals =
        decoded(decode_local_signal_levels(test::port8899_reply("ksh210_ecu-r2160_qt2_0030.hex")));
    const auto rt =
        decoded(decode_local_realtime(test::port8899_reply("ksh210_ecu-r2160_qt2_0002.hex")));
    REQUIRE(signals.levels.size() == 6);
    for (std::size_t i = 0; i < 6; ++i) {
        CHECK(signals.levels[i].uid == rt.inverters[i].uid);
        CHECK(signals.levels[i].level >= 168);
        CHECK(signals.levels[i].level <= 170);
    }
}

TEST_CASE("a short error reply is an error naming its status", "[local_api]") {
    const auto reply = test::port8899_reply("ksh270_ecu-b_0002_error_short.hex");
    CHECK(reply == "APS110015000202\n");
    const auto error = failed(decode_local_realtime(reply));
    CHECK(error.offset == 13);
    CHECK(error.reason.find("status `02`") != std::string::npos);
    CHECK(local_error(decode_local_ecu_info("APS110015000102\n")) != nullptr);
}

TEST_CASE("a reply without the trailing END still decodes", "[local_api]") {
    auto reply = test::port8899_reply("ksh210_ecu-r2160_qt2_0002.hex");
    reply.resize(reply.size() - 4);
    // The length as sent (still counting the ending), and corrected to the bytes there are.
    CHECK(decoded(decode_local_realtime(reply)).inverters.size() == 6);
    CHECK(decoded(decode_local_realtime(with_length(reply))).inverters.size() == 6);
    auto signals = test::port8899_reply("ksh210_ecu-r2160_qt2_0030.hex");
    signals.resize(signals.size() - 4);
    CHECK(decoded(decode_local_signal_levels(signals)).levels.size() == 6);
    auto info = test::port8899_reply("rdr129_ecu-r-pro_ds3_0001.hex");
    info.resize(info.size() - 4);
    CHECK(decoded(decode_local_ecu_info(info)).time_zone == "Europe/Amsterdam");
}

TEST_CASE("a truncated reply is an error, never a partial plant", "[local_api]") {
    const auto reply = test::port8899_reply("ksh79_ecu-r2160_yc600_0002.hex");
    for (std::size_t size : {std::size_t{5}, std::size_t{20}, std::size_t{100}, std::size_t{320}}) {
        INFO(size);
        const auto error = failed(decode_local_realtime(reply.substr(0, size)));
        CHECK(error.offset <= size);
    }
    const auto info = test::port8899_reply("ksh210_ecu-r2160_qt2_0001.hex");
    CHECK(local_error(decode_local_ecu_info(info.substr(0, 60))) != nullptr);
    const auto signals = test::port8899_reply("ksh210_ecu-r2160_qt2_0030.hex");
    CHECK(local_error(decode_local_signal_levels(signals.substr(0, 30))) != nullptr);
}

TEST_CASE("an unknown record type stops the frame's decode with the reason", "[local_api]") {
    auto reply = test::port8899_reply("ksh210_ecu-r2160_qt2_0002.hex");
    // The third record (26 + 2 * 27) claims type `07`.
    const std::size_t type_at = 26 + 2 * 27 + 7;
    REQUIRE(reply.substr(type_at, 2) == "02");
    reply[type_at + 1] = '7';
    const auto error = failed(decode_local_realtime(reply));
    CHECK(error.offset == type_at);
    CHECK(error.reason == "inverter record 3 has unknown type `07`");
}

TEST_CASE("a reply to another command is refused", "[local_api]") {
    const auto signals = test::port8899_reply("ksh210_ecu-r2160_qt2_0030.hex");
    const auto error = failed(decode_local_realtime(signals));
    CHECK(error.offset == 9);
    CHECK(local_error(decode_local_ecu_info("not an APS frame")) != nullptr);
}

} // namespace test_local_api

namespace test_local_api {

TEST_CASE("out-of-range grid voltage, frequency and temperature are left unknown, with why",
          "[local_api]") {
    auto reply = test::port8899_reply("ksh210_ecu-r2160_qt2_0002.hex");
    const auto record = reply.find(std::string("\x90\x10\x00\x00\x00\x01", 6));
    REQUIRE(record != std::string::npos);
    const auto put_u16 = [&](std::size_t at, unsigned value) {
        reply[record + at] = static_cast<char>(value >> 8);
        reply[record + at + 1] = static_cast<char>(value & 0xff);
    };
    put_u16(9, 0xffff);  // grid frequency: 6553.5 Hz
    put_u16(11, 1);      // temperature: −99 °C
    put_u16(15, 0xffff); // grid voltage of phase 1: 65535 V
    put_u16(19, 79);     // phase 2: 79 V, below any grid
    const auto rt = decoded(decode_local_realtime(reply));
    const auto& first = rt.inverters.at(0);
    CHECK_FALSE(first.frequency_hz);
    CHECK_FALSE(first.temperature_c);
    REQUIRE(first.ac_voltage_v.size() == 3);
    CHECK_FALSE(first.ac_voltage_v[0]);
    CHECK_FALSE(first.ac_voltage_v[1]);
    CHECK(first.ac_voltage_v[2] == Approx(393)); // the phase in range stays
    CHECK(first.channel_power_w[3] == Approx(19));
    REQUIRE(rt.dropped.size() == 4);
    CHECK(rt.dropped[0].reason == "inverter 901000000001 grid frequency 6553.5 Hz is not 40-70 Hz");
    CHECK(rt.dropped[1].reason == "inverter 901000000001 temperature -99 C is not -40-125 C");
    CHECK(rt.dropped[2].reason == "inverter 901000000001 grid voltage 65535 V is not 80-500 V");
    CHECK(rt.dropped[3].reason == "inverter 901000000001 grid voltage 79 V is not 80-500 V");
    for (const auto& other : std::vector(rt.inverters.begin() + 1, rt.inverters.end()))
        check_physical_sense(other); // the other records are read as before
}

} // namespace test_local_api
