// The payloads written as text are byte for byte those of the JSON documents' dump(), for the
// real capture and for many generated readings: odd numbers (NaN, infinities, -0, extremes,
// ledger differences), odd strings, odd channel numbers and counts, odd timestamps.
#include "ecu2mqtt/mqtt/json_text.hpp"
#include "ecu2mqtt/mqtt/mqtt_payloads.hpp"
#include "ecu2mqtt/protocol/decoder.hpp"
#include "support/test_paths.hpp"
#include "support/upload_builder.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

using namespace ecu2mqtt;

namespace test_payload_text {
namespace {

class ReadingGenerator {
  public:
    explicit ReadingGenerator(std::uint64_t seed) : rng_(seed) {}

    int pick(int low, int high) { return std::uniform_int_distribution<int>(low, high)(rng_); }

    double number() {
        switch (pick(0, 9)) {
        case 0: {
            constexpr std::array special{std::numeric_limits<double>::quiet_NaN(),
                                         std::numeric_limits<double>::infinity(),
                                         -std::numeric_limits<double>::infinity(),
                                         0.0,
                                         -0.0,
                                         std::numeric_limits<double>::max(),
                                         std::numeric_limits<double>::lowest(),
                                         std::numeric_limits<double>::min(),
                                         std::numeric_limits<double>::denorm_min(),
                                         1e16,
                                         1e15,
                                         1e-5,
                                         0.0001};
            return special[static_cast<std::size_t>(pick(0, static_cast<int>(special.size()) - 1))];
        }
        case 1:
        case 2: { // any bit pattern, NaNs included
            const std::uint64_t bits = rng_();
            double value;
            std::memcpy(&value, &bits, sizeof value);
            return value;
        }
        case 3: // a ledger difference of two lifetime readings
            return static_cast<double>(pick(0, 9999999)) / 10 -
                   static_cast<double>(pick(0, 9999999)) / 10;
        default: { // what the decoder makes of a field: digits / divisor + bias
            constexpr std::array divisors{1.0, 10.0, 100.0};
            const auto digits = static_cast<double>(rng_() % 1000000000000000000ULL);
            return std::floor(digits / std::pow(10.0, pick(0, 17))) /
                       divisors[static_cast<std::size_t>(pick(0, 2))] +
                   (pick(0, 3) == 0 ? -100 : 0);
        }
        }
    }

    std::string text() {
        static const std::vector<std::string> pieces{"806000011223",
                                                     "QS1",
                                                     "unknown model 123",
                                                     "\"",
                                                     "\\",
                                                     "\n",
                                                     "\t",
                                                     "\b",
                                                     "\f",
                                                     "\r",
                                                     std::string(1, '\0'),
                                                     "\x01",
                                                     "\x1f",
                                                     "\x7f",
                                                     "/",
                                                     "é",
                                                     "€",
                                                     "𝄞",
                                                     " ",
                                                     "ECU-R Pro"};
        std::string out;
        for (int n = pick(0, 4); n > 0; --n)
            out += pieces[static_cast<std::size_t>(pick(0, static_cast<int>(pieces.size()) - 1))];
        return out;
    }

    LocalDateTime timestamp() {
        if (pick(0, 9) == 0) // out of every field's width, even negative
            return {pick(-20000, 20000), pick(-5, 200), pick(-5, 200),
                    pick(-5, 200),       pick(-5, 200), pick(-5, 200)};
        return {pick(0, 9999), pick(1, 12), pick(1, 28), pick(0, 23), pick(0, 59), pick(0, 59)};
    }

    InverterReading inverter() {
        InverterReading inv;
        inv.uid = pick(0, 3) == 0 ? text() : "80600001" + test::zero_padded(pick(0, 9999), 4);
        inv.model_code = inv.uid.substr(0, 3);
        inv.model = pick(0, 3) == 0 ? text() : "QS1";
        inv.frequency_hz = number();
        inv.temperature_c = number();
        inv.power_w = number();
        const int channels = pick(0, 3) == 0 ? pick(0, 12) : pick(1, 4);
        for (int k = 1; k <= channels; ++k) {
            ChannelReading ch;
            switch (pick(0, 5)) {
            case 0: // a record that numbers itself wrongly, maybe like another one
                ch.channel = pick(0, 9);
                break;
            case 1: // numbers no decoder reads from one digit
                ch.channel = pick(-3, 120);
                break;
            default:
                ch.channel = k;
            }
            ch.voltage_v = number();
            ch.current_a = number();
            ch.power_w = number();
            inv.channels.push_back(ch);
        }
        return inv;
    }

    RealtimeUpload upload() {
        RealtimeUpload up;
        up.ecu_id = pick(0, 3) == 0 ? text() : "2160000" + test::zero_padded(pick(0, 99999), 5);
        up.ecu_model = pick(0, 3) == 0 ? text() : "ECU-R";
        up.power_w = number();
        up.lifetime_energy_kwh = number();
        up.timestamp = timestamp();
        up.inverters_online = pick(0, 3) == 0 ? pick(-1000, 1000000) : pick(0, 50);
        return up;
    }

    KnownInverter known_inverter() {
        const auto inv = inverter();
        const int channels = pick(0, 5) == 0 ? pick(-2, 130) : pick(0, 4);
        return {inv.uid, inv.model_code, inv.model, channels};
    }

  private:
    std::mt19937_64 rng_;
};

template <class Fn> std::string appended(Fn&& write) {
    std::string out;
    write(out);
    return out;
}

// The text, or the exception's message when writing it throws (a string cut inside a UTF-8
// sequence does, both ways).
template <class Fn> std::string outcome(Fn&& write) {
    try {
        return write();
    } catch (const nlohmann::json::exception& e) {
        return std::string("threw ") + e.what();
    }
}

} // namespace

TEST_CASE("numbers are written as dump() writes them, null where it writes null") {
    ReadingGenerator gen(1);
    for (int i = 0; i < 200000; ++i) {
        const double value = gen.number();
        INFO(value);
        REQUIRE(appended([&](std::string& out) { append_json_number(out, value); }) ==
                nlohmann::json(value).dump());
    }
    for (const std::int64_t value :
         {std::int64_t{0}, std::int64_t{-1}, std::int64_t{190},
          std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max()})
        CHECK(appended([&](std::string& out) { append_json_integer(out, value); }) ==
              nlohmann::json(value).dump());
}

TEST_CASE("hundredths, what the decoder makes, are written with dump()'s digits") {
    // Every voltage, current, frequency, temperature and small power the layout can hold (a
    // tenth or a whole number is the same double as that many hundredths); then numbers of up to
    // 15 digits, as the header's power and energy fields hold.
    const auto same_as_dump = [](double value) {
        std::string out;
        append_json_number(out, value);
        return out == nlohmann::json(value).dump();
    };
    std::size_t differences = 0;
    for (std::int64_t n = -1000000; n <= 1000000; ++n)
        differences += !same_as_dump(static_cast<double>(n) / 100);
    CHECK(differences == 0);
    CHECK(static_cast<double>(3380) / 100 == static_cast<double>(338) / 10);
    std::mt19937_64 rng(5);
    for (int i = 0; i < 1000000; ++i) {
        const auto digits = std::uniform_int_distribution<int>(1, 15)(rng);
        const auto n =
            static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(std::pow(10.0, digits))) *
            (rng() % 2 == 0 ? 1 : -1);
        differences += !same_as_dump(static_cast<double>(n) / 100) +
                       !same_as_dump(static_cast<double>(n) / 10);
    }
    CHECK(differences == 0);
}

TEST_CASE("strings are escaped as dump() escapes them; invalid UTF-8 throws as in dump()") {
    ReadingGenerator gen(2);
    for (int i = 0; i < 20000; ++i) {
        const auto text = gen.text();
        REQUIRE(appended([&](std::string& out) { append_json_string(out, text); }) ==
                nlohmann::json(text).dump());
    }
    std::string out;
    CHECK_THROWS_AS(append_json_string(out, "bad \xb0 byte"), nlohmann::json::type_error);
    CHECK_THROWS_AS(nlohmann::json("bad \xb0 byte").dump(), nlohmann::json::type_error);
}

TEST_CASE("timestamps are written as format_iso's %04d-%02d-%02dT%02d:%02d:%02d") {
    ReadingGenerator gen(3);
    for (int i = 0; i < 20000; ++i) {
        const auto t = gen.timestamp();
        char expected[80];
        std::snprintf(expected, sizeof expected, "%04d-%02d-%02dT%02d:%02d:%02d", t.year, t.month,
                      t.day, t.hour, t.minute, t.second);
        REQUIRE(format_iso(t) == expected);
    }
}

TEST_CASE("generated readings: every payload as text equals the document's dump()") {
    ReadingGenerator gen(4);
    for (int i = 0; i < 5000; ++i) {
        const auto up = gen.upload();
        const double lifetime = gen.number();
        const std::optional<double> today =
            gen.pick(0, 3) == 0 ? std::nullopt : std::optional(gen.number());
        const std::string last_seen = gen.pick(0, 3) == 0 ? gen.text() : "2024-02-06T11:22:20Z";
        REQUIRE(outcome([&] {
                    return appended([&](std::string& out) {
                        append_ecu_state_payload(out, up, lifetime, today, last_seen);
                    });
                }) ==
                outcome([&] { return ecu_state_payload(up, lifetime, today, last_seen).dump(); }));

        const auto inv = gen.inverter();
        const auto timestamp = gen.timestamp();
        REQUIRE(outcome([&] {
                    return appended([&](std::string& out) {
                        append_inverter_state_payload(out, inv, timestamp);
                    });
                }) == outcome([&] { return inverter_state_payload(inv, timestamp).dump(); }));

        const auto known = gen.known_inverter();
        INFO(known.channels << " channels");
        REQUIRE(outcome([&] {
                    return appended([&](std::string& out) {
                        append_absent_inverter_payload(out, known, timestamp);
                    });
                }) == outcome([&] { return absent_inverter_payload(known, timestamp).dump(); }));
    }
}

TEST_CASE("the real capture: payloads from the views and from the owning decode are dump()'s") {
    const std::string bytes = test::captured_upload();
    const auto up = std::get<RealtimeUpload>(*decoded_message(decode_message(bytes)));
    RealtimeView view;
    REQUIRE(decode_realtime_into(bytes, view));
    const std::string last_seen = "2024-02-06T11:22:20+01:00";
    const std::string expected_ecu = ecu_state_payload(up, 2127.9, 7.6, last_seen).dump();
    CHECK(expected_ecu == R"({"id":"216000064136","inverters_online":2,)"
                          R"("last_seen":"2024-02-06T11:22:20+01:00","lifetime_energy_kwh":2127.9,)"
                          R"("model":"ECU-R","power_w":190.0,"timestamp":"2024-02-06T11:22:14",)"
                          R"("today_energy_kwh":7.6})");
    CHECK(appended([&](std::string& out) {
              append_ecu_state_payload(out, view, 2127.9, 7.6, last_seen);
          }) == expected_ecu);
    CHECK(appended([&](std::string& out) {
              append_ecu_state_payload(out, up, 2127.9, 7.6, last_seen);
          }) == expected_ecu);
    CHECK(appended([&](std::string& out) {
              append_ecu_state_payload(out, view, 2127.9, std::nullopt, last_seen);
          }) == ecu_state_payload(up, 2127.9, std::nullopt, last_seen).dump());

    REQUIRE(view.inverters.size() == up.inverters.size());
    for (std::size_t i = 0; i < up.inverters.size(); ++i) {
        const auto expected = inverter_state_payload(up.inverters[i], up.timestamp).dump();
        CHECK(appended([&](std::string& out) {
                  append_inverter_state_payload(out, view.inverters[i], view.timestamp);
              }) == expected);
        CHECK(appended([&](std::string& out) {
                  append_inverter_state_payload(out, up.inverters[i], up.timestamp);
              }) == expected);
        const auto known = known_inverter_from(up.inverters[i]);
        CHECK(appended([&](std::string& out) {
                  append_absent_inverter_payload(out, known, up.timestamp);
              }) == absent_inverter_payload(known, up.timestamp).dump());
    }
    CHECK(appended([&](std::string& out) {
              append_inverter_state_payload(out, view.inverters[1], view.timestamp);
          }) == R"({"ch1_current_a":1.0,"ch1_power_w":29.0,"ch1_voltage_v":31.1,)"
                R"("ch2_current_a":1.2,"ch2_power_w":38.0,"ch2_voltage_v":34.2,)"
                R"("ch3_current_a":1.4,"ch3_power_w":45.0,"ch3_voltage_v":33.4,)"
                R"("ch4_current_a":1.4,"ch4_power_w":43.0,"ch4_voltage_v":32.9,)"
                R"("frequency_hz":50.0,"model":"QS1","model_code":"806","power_w":155.0,)"
                R"("reporting":true,"temperature_c":15.0,"timestamp":"2024-02-06T11:22:14",)"
                R"("uid":"806000011223"})");
}

TEST_CASE("payloads are appended after what the buffer holds, which is kept") {
    const std::string bytes = test::captured_upload();
    RealtimeView view;
    REQUIRE(decode_realtime_into(bytes, view));
    std::string out = "prefix:";
    append_inverter_state_payload(out, view.inverters[0], view.timestamp);
    CHECK(out.starts_with("prefix:{\"ch1_current_a\":0.5,"));
    CHECK(out.ends_with("\"uid\":\"408000111178\"}"));
}

} // namespace test_payload_text
