#include "ecu2mqtt/protocol/local_api.hpp"

#include "ecu2mqtt/protocol/printable.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <span>

namespace ecu2mqtt {
namespace {

constexpr std::string_view kSignature = "APS";
constexpr std::string_view kRequestGroup = "11";
constexpr std::string_view kTrailer = "END\n";
constexpr std::string_view kStatusOk = "00";

constexpr std::size_t kGroupOffset = 3, kLengthOffset = 5, kLengthWidth = 4;
constexpr std::size_t kCommandOffset = 9, kCommandWidth = 4;
constexpr std::size_t kStatusOffset = 13, kStatusWidth = 2;
constexpr std::size_t kHeaderSize = 13;
// `APS110015000202\n`: the whole of a short error reply.
constexpr std::size_t kShortErrorSize = 16;
constexpr std::size_t kEcuIdWidth = 12;
constexpr std::size_t kUidWidth = 6; // BCD
constexpr std::size_t kBcdTimeWidth = 7;

// ---- 0001, ECU info: the numbers before the texts, then where the counts and texts start per
// layout (byte 25–26: `02` leaves out the 7-byte time of the last contact with the EMA).
constexpr std::size_t kInfoEcuIdOffset = 13, kInfoLayoutOffset = 25;
struct InfoNumber {
    std::size_t offset;
    double divisor;
    double LocalEcuInfo::*member;
};
constexpr std::array<InfoNumber, 3> kInfoNumbers{{
    {27, 10, &LocalEcuInfo::lifetime_energy_kwh}, // u32, 1/10 kWh
    {31, 1, &LocalEcuInfo::last_power_w},         // u32, W
    {35, 100, &LocalEcuInfo::today_energy_kwh},   // u32, 1/100 kWh
}};
struct InfoLayout {
    std::string_view code;
    std::optional<std::size_t> last_ema_contact_offset;
    std::size_t registered_offset; // u16, then online u16, 2 unknown bytes, 3-digit text length
};
constexpr std::array<InfoLayout, 2> kInfoLayouts{{{"01", 39, 46}, {"02", std::nullopt, 39}}};
constexpr std::size_t kInfoCountsToFirmware = 6;
constexpr std::size_t kTextLengthWidth = 3;

// ---- 0002, real-time data: header, then one record per inverter, laid out per record type.
constexpr std::size_t kRealtimeCountOffset = 17, kRealtimeTimeOffset = 19;
constexpr std::size_t kRealtimeRecordsOffset = 26;
// Inside a record: uid 0–6, online 6, type 7–9, frequency u16 /10 Hz 9, temperature u16 −100 °C
// 11, then the type's own u16 fields from 13.
constexpr std::size_t kRecordOnlineOffset = 6, kRecordTypeOffset = 7, kRecordTypeWidth = 2;
constexpr std::size_t kRecordCommonSize = 9;
constexpr std::size_t kRecordFrequencyOffset = 9, kRecordTemperatureOffset = 11;
constexpr std::size_t kRecordFieldsOffset = 13;

enum class Quantity { Power, Voltage };
struct RecordField {
    Quantity quantity;
    std::size_t index; // channel for power, phase for voltage
};
struct RecordLayout {
    std::string_view type_code;
    std::string_view families;
    std::size_t size;
    std::size_t channels;
    std::size_t phases;
    std::array<RecordField, 7> fields;
    std::size_t field_count;
};
constexpr auto P = Quantity::Power;
constexpr auto V = Quantity::Voltage;
// The second voltage of the single-phase types names the same grid again.
constexpr std::array<RecordLayout, 6> kRecordLayouts{{
    {"00", "registered, never heard", 9, 0, 0, {}, 0},
    {"01", "YC600", 21, 2, 1, {{{P, 0}, {V, 0}, {P, 1}, {V, 0}}}, 4},
    {"04", "DS3", 21, 2, 1, {{{P, 0}, {V, 0}, {P, 1}, {V, 0}}}, 4},
    {"02", "YC1000", 27, 4, 3, {{{P, 0}, {V, 0}, {P, 1}, {V, 1}, {P, 2}, {V, 2}, {P, 3}}}, 7},
    {"05", "QT2", 27, 4, 3, {{{P, 0}, {V, 0}, {P, 1}, {V, 1}, {P, 2}, {V, 2}, {P, 3}}}, 7},
    {"03", "QS1", 23, 4, 1, {{{P, 0}, {V, 0}, {P, 1}, {P, 2}, {P, 3}}}, 5},
}};
constexpr bool sizes_match_fields() {
    for (const auto& layout : kRecordLayouts)
        if (layout.size != (layout.field_count == 0 ? kRecordCommonSize
                                                    : kRecordFieldsOffset + 2 * layout.field_count))
            return false;
    return true;
}
static_assert(sizes_match_fields());

// ---- 0030, signal levels: after the status, a BCD uid and one level byte per inverter.
constexpr std::size_t kSignalRecordsOffset = 15, kSignalRecordSize = 7;

const RecordLayout* find_record_layout(std::string_view type_code) {
    const auto it = std::find_if(kRecordLayouts.begin(), kRecordLayouts.end(),
                                 [&](const auto& layout) { return layout.type_code == type_code; });
    return it == kRecordLayouts.end() ? nullptr : &*it;
}

std::string printable_number(double value) {
    std::array<char, 32> text{};
    std::snprintf(text.data(), text.size(), "%g", value);
    return text.data();
}

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

bool all_digits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), is_digit);
}

std::optional<std::size_t> parse_decimal(std::string_view s) {
    if (!all_digits(s))
        return std::nullopt;
    std::size_t value = 0;
    for (char c : s)
        value = value * 10 + static_cast<std::size_t>(c - '0');
    return value;
}

std::uint32_t read_unsigned(std::string_view bytes, std::size_t at, std::size_t width) {
    std::uint32_t value = 0;
    for (std::size_t i = at; i < at + width; ++i)
        value = (value << 8) | static_cast<unsigned char>(bytes[i]);
    return value;
}

// Two decimal digits per byte; nullopt if a half-byte is not a digit (`d0d0…`).
std::optional<std::string> read_bcd(std::string_view bytes, std::size_t at, std::size_t width) {
    std::string digits;
    digits.reserve(width * 2);
    for (std::size_t i = at; i < at + width; ++i) {
        const auto byte = static_cast<unsigned char>(bytes[i]);
        const unsigned high = byte >> 4, low = byte & 0x0f;
        if (high > 9 || low > 9)
            return std::nullopt;
        digits += static_cast<char>('0' + high);
        digits += static_cast<char>('0' + low);
    }
    return digits;
}

std::string hex_of(std::string_view bytes) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string text;
    for (char c : bytes) {
        const auto byte = static_cast<unsigned char>(c);
        text += kHex[byte >> 4];
        text += kHex[byte & 0x0f];
    }
    return text;
}

bool printable(std::string_view text) {
    return std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

LocalApiError too_short(std::size_t needed, std::size_t have, std::string_view what) {
    return {have, "frame ends at " + std::to_string(have) + ", " + std::string(what) + " needs " +
                      std::to_string(needed) + " bytes"};
}

// The frame checked up to its command (and its status, when the command has one), without the
// ending. `body` then holds the frame's bytes as far as they go.
struct Frame {
    std::string group;
    std::string_view body;
};

std::variant<Frame, LocalApiError> open_frame(std::string_view reply, LocalCommand command,
                                              bool has_status) {
    if (!reply.starts_with(kSignature))
        return LocalApiError{0, "no `APS` signature"};
    if (reply.size() < kHeaderSize)
        return too_short(kHeaderSize, reply.size(), "the header");
    const auto group = reply.substr(kGroupOffset, 2);
    if (!all_digits(group))
        return LocalApiError{kGroupOffset, "group `" + hex_of(group) + "` is not two digits"};
    const auto length = parse_decimal(reply.substr(kLengthOffset, kLengthWidth));
    if (!length)
        return LocalApiError{kLengthOffset, "length is not four digits"};
    const auto code = reply.substr(kCommandOffset, kCommandWidth);
    if (code != local_command_code(command))
        return LocalApiError{kCommandOffset, "reply to command `" + printable_text(code) +
                                                 "`, expected `" +
                                                 std::string(local_command_code(command)) + "`"};
    // Anything past the announced size is not part of this frame.
    auto body = reply.substr(0, std::min(reply.size(), *length + 1));
    if (body.ends_with(kTrailer))
        body.remove_suffix(kTrailer.size());
    const bool short_error = *length + 1 == kShortErrorSize;
    if (has_status || short_error) {
        if (body.size() < kStatusOffset + kStatusWidth)
            return too_short(kStatusOffset + kStatusWidth, body.size(), "the status");
        const auto status = body.substr(kStatusOffset, kStatusWidth);
        if (status != kStatusOk || short_error)
            return LocalApiError{kStatusOffset,
                                 "ECU answered status `" + printable_text(status) + "`"};
    }
    return Frame{std::string(group), body};
}

} // namespace

std::string_view local_command_code(LocalCommand command) {
    switch (command) {
    case LocalCommand::EcuInfo:
        return "0001";
    case LocalCommand::Realtime:
        return "0002";
    case LocalCommand::SignalLevels:
        return "0030";
    }
    return "0001";
}

std::optional<std::string> encode_local_request(LocalCommand command, std::string_view ecu_id) {
    std::string payload;
    if (command != LocalCommand::EcuInfo) {
        if (ecu_id.size() != kEcuIdWidth || !all_digits(ecu_id))
            return std::nullopt;
        payload = ecu_id;
    }
    const std::size_t size = kHeaderSize + payload.size() + kTrailer.size();
    std::string length = std::to_string(size - 1);
    length.insert(0, kLengthWidth - length.size(), '0');
    return std::string(kSignature) + std::string(kRequestGroup) + length +
           std::string(local_command_code(command)) + payload + std::string(kTrailer);
}

std::optional<std::size_t> local_reply_size(std::string_view received) {
    if (received.size() < kLengthOffset + kLengthWidth)
        return std::nullopt;
    const auto length = parse_decimal(received.substr(kLengthOffset, kLengthWidth));
    if (!length)
        return std::nullopt;
    return *length + 1;
}

bool local_reply_complete(std::string_view received) {
    const auto size = local_reply_size(received);
    return (size && received.size() >= *size) || received.ends_with(kTrailer);
}

LocalResult<LocalEcuInfo> decode_local_ecu_info(std::string_view reply) {
    const auto opened = open_frame(reply, LocalCommand::EcuInfo, false);
    if (const auto* error = std::get_if<LocalApiError>(&opened))
        return *error;
    const auto& frame = std::get<Frame>(opened);
    const auto body = frame.body;
    LocalEcuInfo info;
    info.group = frame.group;

    if (body.size() < kInfoLayoutOffset + 2)
        return too_short(kInfoLayoutOffset + 2, body.size(), "the ECU id and layout");
    info.ecu_id = body.substr(kInfoEcuIdOffset, kEcuIdWidth);
    if (!all_digits(info.ecu_id))
        return LocalApiError{kInfoEcuIdOffset, "ECU id is not 12 digits"};
    const auto layout_code = body.substr(kInfoLayoutOffset, 2);
    const auto layout = std::find_if(kInfoLayouts.begin(), kInfoLayouts.end(),
                                     [&](const auto& l) { return l.code == layout_code; });
    if (layout == kInfoLayouts.end())
        return LocalApiError{kInfoLayoutOffset,
                             "unknown ECU info layout `" + printable_text(layout_code) + "`"};

    const std::size_t firmware_length_offset = layout->registered_offset + kInfoCountsToFirmware;
    if (body.size() < firmware_length_offset + kTextLengthWidth)
        return too_short(firmware_length_offset + kTextLengthWidth, body.size(),
                         "the numbers of the ECU info");
    for (const auto& number : kInfoNumbers)
        info.*number.member = read_unsigned(body, number.offset, 4) / number.divisor;
    if (layout->last_ema_contact_offset)
        if (const auto digits = read_bcd(body, *layout->last_ema_contact_offset, kBcdTimeWidth))
            info.last_ema_contact = parse_compact_timestamp(*digits);
    info.inverters_registered = static_cast<int>(read_unsigned(body, layout->registered_offset, 2));
    info.inverters_online = static_cast<int>(read_unsigned(body, layout->registered_offset + 2, 2));

    std::size_t at = firmware_length_offset;
    for (auto [member, what] : {std::pair{&LocalEcuInfo::firmware, "firmware"},
                                std::pair{&LocalEcuInfo::time_zone, "time zone"}}) {
        if (body.size() < at + kTextLengthWidth)
            return too_short(at + kTextLengthWidth, body.size(), std::string(what) + " length");
        const auto length = parse_decimal(body.substr(at, kTextLengthWidth));
        if (!length)
            return LocalApiError{at, std::string(what) + " length is not three digits"};
        at += kTextLengthWidth;
        if (body.size() < at + *length)
            return too_short(at + *length, body.size(), std::string(what) + " text");
        const auto text = body.substr(at, *length);
        // Only that text is unusable: the id and counts before it still are.
        if (printable(text))
            info.*member = text;
        else
            info.dropped.push_back({at, std::string(what) + " text is not printable"});
        at += *length;
    }
    return info; // the MAC addresses that follow are of no use to the service
}

LocalResult<LocalRealtime> decode_local_realtime(std::string_view reply) {
    const auto opened = open_frame(reply, LocalCommand::Realtime, true);
    if (const auto* error = std::get_if<LocalApiError>(&opened))
        return *error;
    const auto& frame = std::get<Frame>(opened);
    const auto body = frame.body;
    LocalRealtime realtime;
    realtime.group = frame.group;
    if (body.size() < kRealtimeRecordsOffset)
        return too_short(kRealtimeRecordsOffset, body.size(), "the real-time header");
    const std::size_t count = read_unsigned(body, kRealtimeCountOffset, 2);
    if (const auto digits = read_bcd(body, kRealtimeTimeOffset, kBcdTimeWidth))
        realtime.ecu_time = parse_compact_timestamp(*digits);

    std::size_t at = kRealtimeRecordsOffset;
    for (std::size_t n = 0; n < count; ++n) {
        const std::string record_name = "inverter record " + std::to_string(n + 1);
        if (body.size() < at + kRecordCommonSize)
            return too_short(at + kRecordCommonSize, body.size(), record_name);
        const auto type_code = body.substr(at + kRecordTypeOffset, kRecordTypeWidth);
        const RecordLayout* layout = find_record_layout(type_code);
        // The peers skip 9 bytes here, which reads every later record from the wrong place.
        if (!layout)
            return LocalApiError{at + kRecordTypeOffset, record_name + " has unknown type `" +
                                                             printable_text(type_code) + "`"};
        if (body.size() < at + layout->size)
            return too_short(at + layout->size, body.size(),
                             record_name + " (" + std::string(layout->families) + ")");
        const auto record = body.substr(at, layout->size);
        const auto uid = read_bcd(record, 0, kUidWidth);
        if (!uid)
            return LocalApiError{at, record_name + " uid `" + hex_of(record.substr(0, kUidWidth)) +
                                         "` is not BCD"};
        LocalInverter inverter;
        inverter.uid = *uid;
        inverter.type_code = type_code;
        inverter.online = record[kRecordOnlineOffset] != 0;
        inverter.channel_power_w.resize(layout->channels);
        inverter.ac_voltage_v.resize(layout->phases);
        if (inverter.online && layout->field_count > 0) {
            // A zero here is the ECU saying it has no value: 0 Hz and −100 °C are not readings.
            const auto in_range = [&](std::string_view what, double value, double low, double high,
                                      std::string_view unit) -> std::optional<double> {
                if (value >= low && value <= high)
                    return value;
                realtime.dropped.push_back(
                    {at, "inverter " + inverter.uid + " " + std::string(what) + " " +
                             printable_number(value) + " " + std::string(unit) + " is not " +
                             printable_number(low) + "-" + printable_number(high) + " " +
                             std::string(unit)});
                return std::nullopt;
            };
            if (const auto raw = read_unsigned(record, kRecordFrequencyOffset, 2); raw != 0)
                inverter.frequency_hz = in_range("grid frequency", raw / 10.0, kMinGridFrequency,
                                                 kMaxGridFrequency, "Hz");
            if (const auto raw = read_unsigned(record, kRecordTemperatureOffset, 2); raw != 0)
                inverter.temperature_c =
                    in_range("temperature", static_cast<double>(raw) - 100, kMinInverterTemperature,
                             kMaxInverterTemperature, "C");
            for (std::size_t f = 0; f < layout->field_count; ++f) {
                const auto& field = layout->fields[f];
                const double value = read_unsigned(record, kRecordFieldsOffset + 2 * f, 2);
                if (field.quantity == Quantity::Power)
                    inverter.channel_power_w[field.index] = value;
                else if (value != 0 && !inverter.ac_voltage_v[field.index])
                    inverter.ac_voltage_v[field.index] =
                        in_range("grid voltage", value, kMinGridVoltage, kMaxGridVoltage, "V");
            }
        }
        realtime.inverters.push_back(std::move(inverter));
        at += layout->size;
    }
    return realtime;
}

LocalResult<LocalSignalLevels> decode_local_signal_levels(std::string_view reply) {
    const auto opened = open_frame(reply, LocalCommand::SignalLevels, true);
    if (const auto* error = std::get_if<LocalApiError>(&opened))
        return *error;
    const auto& frame = std::get<Frame>(opened);
    const auto body = frame.body;
    LocalSignalLevels signals;
    signals.group = frame.group;
    if ((body.size() - kSignalRecordsOffset) % kSignalRecordSize != 0)
        return LocalApiError{body.size(), std::to_string(body.size() - kSignalRecordsOffset) +
                                              " bytes of signal records are not whole records of " +
                                              std::to_string(kSignalRecordSize)};
    for (std::size_t at = kSignalRecordsOffset; at < body.size(); at += kSignalRecordSize) {
        const auto uid = read_bcd(body, at, kUidWidth);
        if (!uid)
            return LocalApiError{at, "signal record uid `" + hex_of(body.substr(at, kUidWidth)) +
                                         "` is not BCD"};
        signals.levels.push_back({*uid, static_cast<unsigned char>(body[at + kUidWidth])});
    }
    return signals;
}

} // namespace ecu2mqtt
