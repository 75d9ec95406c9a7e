#include "ecu2mqtt/mqtt/mqtt_payloads.hpp"

#include "ecu2mqtt/mqtt/json_text.hpp"
#include "ecu2mqtt/protocol/message_json.hpp"

#include <algorithm>
#include <array>
#include <vector>

namespace ecu2mqtt {
namespace {

std::string channel_key(int channel, const char* quantity) {
    return "ch" + std::to_string(channel) + "_" + quantity;
}

nlohmann::json inverter_common(const KnownInverter& inv, const LocalDateTime& timestamp) {
    return {{"uid", inv.uid},
            {"model", inv.model},
            {"model_code", inv.model_code},
            {"timestamp", format_iso(timestamp)}};
}

// ---- The same payloads as text. dump() writes an object's members sorted by key; each writer
// below gives its keys in that order.

void timestamp_member(JsonObjectWriter& object, const LocalDateTime& timestamp) {
    auto& out = object.key("timestamp");
    out += '"';
    append_iso(out, timestamp); // digits, '-', 'T' and ':' only: nothing to escape
    out += '"';
}

// Channel keys sort by their number as text, and the '_' after it sorts after every digit:
// "ch10_" < "ch1_" < "ch2_". So a number's extensions by a digit come before the number itself.
template <class Write> void in_channel_key_order(long long number, long long last, Write& write) {
    for (int digit = 0; digit <= 9 && number * 10 + digit <= last; ++digit)
        in_channel_key_order(number * 10 + digit, last, write);
    write(number);
}

template <class Write> void each_channel_number_in_key_order(int channels, Write&& write) {
    for (int first_digit = 1; first_digit <= 9 && first_digit <= channels; ++first_digit)
        in_channel_key_order(first_digit, channels, write);
}

// The keys of a channel numbered by one digit, as the decoder numbers them, made at compile time.
struct ChannelKeys {
    JsonKey current_a;
    JsonKey power_w;
    JsonKey voltage_v;
};

consteval JsonKey one_digit_channel_key(int digit, std::string_view quantity) {
    std::array<char, 32> name{'c', 'h', static_cast<char>('0' + digit)};
    std::copy(quantity.begin(), quantity.end(), name.begin() + 3);
    return JsonKey(std::string_view(name.data(), 3 + quantity.size()));
}

consteval ChannelKeys channel_keys(int digit) {
    return {one_digit_channel_key(digit, "_current_a"), one_digit_channel_key(digit, "_power_w"),
            one_digit_channel_key(digit, "_voltage_v")};
}

constexpr std::array kOneDigitChannelKeys{
    channel_keys(0), channel_keys(1), channel_keys(2), channel_keys(3), channel_keys(4),
    channel_keys(5), channel_keys(6), channel_keys(7), channel_keys(8), channel_keys(9)};

// The channels of a present inverter, in key order. Two records with one number write the same
// keys, and the later record's values win, as with the document's assignments.
template <class Channels>
void present_channels(JsonObjectWriter& object, const Channels& channels) {
    // The decoder reads the number from one digit: a table by digit orders them.
    constexpr int kNone = -1;
    std::array<int, 10> last_with_digit;
    last_with_digit.fill(kNone);
    bool all_digits = true;
    for (std::size_t i = 0; i < channels.size() && all_digits; ++i) {
        const int number = channels[i].channel;
        all_digits = number >= 0 && number <= 9;
        if (all_digits)
            last_with_digit[static_cast<std::size_t>(number)] = static_cast<int>(i);
    }
    if (all_digits) {
        for (std::size_t digit = 0; digit < last_with_digit.size(); ++digit) {
            if (last_with_digit[digit] == kNone)
                continue;
            const auto& ch = channels[static_cast<std::size_t>(last_with_digit[digit])];
            const auto& keys = kOneDigitChannelKeys[digit];
            object.number(keys.current_a, ch.current_a);
            object.number(keys.power_w, ch.power_w);
            object.number(keys.voltage_v, ch.voltage_v);
        }
        return;
    }
    // Any other numbers (not from the decoder): sorted by their keys' text.
    std::vector<std::pair<std::string, std::size_t>> order;
    for (std::size_t i = 0; i < channels.size(); ++i)
        order.emplace_back(std::to_string(channels[i].channel) + "_", i);
    std::sort(order.begin(), order.end());
    for (std::size_t k = 0; k < order.size(); ++k) {
        if (k + 1 < order.size() && order[k + 1].first == order[k].first)
            continue;
        const auto& ch = channels[order[k].second];
        append_json_number(object.key("ch", ch.channel, "_current_a"), ch.current_a);
        append_json_number(object.key("ch", ch.channel, "_power_w"), ch.power_w);
        append_json_number(object.key("ch", ch.channel, "_voltage_v"), ch.voltage_v);
    }
}

template <class Upload>
void write_ecu_state(std::string& out, const Upload& upload, double lifetime_kwh,
                     std::optional<double> today_kwh, std::string_view last_seen) {
    JsonObjectWriter object(out);
    object.string("id", upload.ecu_id);
    object.integer("inverters_online", upload.inverters_online);
    object.string("last_seen", last_seen);
    object.number("lifetime_energy_kwh", lifetime_kwh);
    object.string("model", upload.ecu_model);
    object.number("power_w", upload.power_w);
    timestamp_member(object, upload.timestamp);
    if (today_kwh)
        object.number("today_energy_kwh", *today_kwh);
    else
        object.null("today_energy_kwh");
    object.close();
}

template <class Inverter>
void write_inverter_state(std::string& out, const Inverter& inverter,
                          const LocalDateTime& timestamp) {
    JsonObjectWriter object(out);
    present_channels(object, inverter.channels);
    object.number("frequency_hz", inverter.frequency_hz);
    object.string("model", inverter.model);
    object.string("model_code", inverter.model_code);
    object.number("power_w", inverter.power_w);
    object.boolean("reporting", true);
    object.number("temperature_c", inverter.temperature_c);
    timestamp_member(object, timestamp);
    object.string("uid", inverter.uid);
    object.close();
}

} // namespace

KnownInverter known_inverter_from(const InverterReading& reading) {
    return {reading.uid, reading.model_code, reading.model,
            static_cast<int>(reading.channels.size())};
}

nlohmann::json ecu_state_payload(const RealtimeUpload& upload, double lifetime_kwh,
                                 std::optional<double> today_kwh, const std::string& last_seen) {
    auto state = ecu_to_json(upload);
    state["lifetime_energy_kwh"] = lifetime_kwh;
    state["today_energy_kwh"] = today_kwh ? nlohmann::json(*today_kwh) : nlohmann::json(nullptr);
    state["last_seen"] = last_seen;
    return state;
}

nlohmann::json inverter_state_payload(const InverterReading& inverter,
                                      const LocalDateTime& timestamp) {
    auto state = inverter_common(known_inverter_from(inverter), timestamp);
    state["reporting"] = true;
    state["power_w"] = inverter.power_w;
    state["frequency_hz"] = inverter.frequency_hz;
    state["temperature_c"] = inverter.temperature_c;
    for (const auto& ch : inverter.channels) {
        state[channel_key(ch.channel, "power_w")] = ch.power_w;
        state[channel_key(ch.channel, "voltage_v")] = ch.voltage_v;
        state[channel_key(ch.channel, "current_a")] = ch.current_a;
    }
    return state;
}

nlohmann::json absent_inverter_payload(const KnownInverter& inverter,
                                       const LocalDateTime& timestamp) {
    auto state = inverter_common(inverter, timestamp);
    state["reporting"] = false;
    state["power_w"] = 0.0;
    state["frequency_hz"] = nullptr;
    state["temperature_c"] = nullptr;
    for (int ch = 1; ch <= inverter.channels; ++ch) {
        state[channel_key(ch, "power_w")] = 0.0;
        state[channel_key(ch, "voltage_v")] = nullptr;
        state[channel_key(ch, "current_a")] = 0.0;
    }
    return state;
}

void append_ecu_state_payload(std::string& out, const RealtimeUpload& upload, double lifetime_kwh,
                              std::optional<double> today_kwh, std::string_view last_seen) {
    write_ecu_state(out, upload, lifetime_kwh, today_kwh, last_seen);
}

void append_ecu_state_payload(std::string& out, const RealtimeView& upload, double lifetime_kwh,
                              std::optional<double> today_kwh, std::string_view last_seen) {
    write_ecu_state(out, upload, lifetime_kwh, today_kwh, last_seen);
}

void append_inverter_state_payload(std::string& out, const InverterReading& inverter,
                                   const LocalDateTime& timestamp) {
    write_inverter_state(out, inverter, timestamp);
}

void append_inverter_state_payload(std::string& out, const InverterView& inverter,
                                   const LocalDateTime& timestamp) {
    write_inverter_state(out, inverter, timestamp);
}

void append_absent_inverter_payload(std::string& out, const KnownInverter& inverter,
                                    const LocalDateTime& timestamp) {
    JsonObjectWriter object(out);
    each_channel_number_in_key_order(inverter.channels, [&object](long long ch) {
        if (ch <= 9) {
            const auto& keys = kOneDigitChannelKeys[static_cast<std::size_t>(ch)];
            object.number(keys.current_a, 0.0);
            object.number(keys.power_w, 0.0);
            object.null(keys.voltage_v);
            return;
        }
        append_json_number(object.key("ch", ch, "_current_a"), 0.0);
        append_json_number(object.key("ch", ch, "_power_w"), 0.0);
        object.key("ch", ch, "_voltage_v") += "null";
    });
    object.null("frequency_hz");
    object.string("model", inverter.model);
    object.string("model_code", inverter.model_code);
    append_json_number(object.key("power_w"), 0.0);
    object.boolean("reporting", false);
    object.null("temperature_c");
    timestamp_member(object, timestamp);
    object.string("uid", inverter.uid);
    object.close();
}

} // namespace ecu2mqtt
