#include "ecu2mqtt/protocol/decoder.hpp"

#include "ecu2mqtt/protocol/inverter_models.hpp"
#include "ecu2mqtt/protocol/printable.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>

namespace ecu2mqtt {
namespace {

// ---- The APS18 layout, as data. Offsets are relative to the start of the part they describe:
// the message for the header, the `E` of `END` for an inverter block, the record for a channel.

template <class Target> struct ScaledField {
    std::size_t offset;
    std::size_t width;
    std::string_view what;
    double divisor; // value = digits / divisor + bias; dividing keeps 338 / 10 printing as 33.8
    double bias;
    double Target::*member;
};

struct UnknownSpan {
    std::size_t offset;
    std::size_t width;
};

constexpr std::string_view kRealtimeSignature = "APS18";
constexpr std::string_view kControlSignature = "ECU11";
constexpr std::string_view kBlockMarker = "END";
constexpr std::string_view kTrailer = "END\n";

constexpr std::size_t kLengthOffset = 5, kLengthWidth = 5;
constexpr std::size_t kEcuIdOffset = 18, kEcuIdWidth = 12;
constexpr std::size_t kTimestampOffset = 60, kTimestampWidth = 14;
constexpr std::size_t kInvertersOnlineOffset = 74, kInvertersOnlineWidth = 3;
constexpr std::size_t kHeaderSize = 83;

constexpr std::array<ScaledField<RealtimeUpload>, 2> kHeaderNumbers{{
    {30, 12, "ECU power in 1/100 W", 100, 0, &RealtimeUpload::power_w},
    {42, 18, "lifetime energy in 1/10 kWh", 10, 0, &RealtimeUpload::lifetime_energy_kwh},
}};
// 10-18 is `A`-padded like the length (a command or sequence number?); 77-83 is digits.
constexpr std::array kHeaderUnknown{UnknownSpan{10, 8}, UnknownSpan{77, 6}};

constexpr std::size_t kUidOffset = 3, kUidWidth = 12, kModelCodeWidth = 3;
constexpr std::size_t kBlockFixedSize = 48;
constexpr std::array<ScaledField<InverterReading>, 2> kBlockNumbers{{
    {20, 5, "grid frequency in 1/10 Hz", 10, 0, &InverterReading::frequency_hz},
    {25, 3, "temperature in °C + 100", 1, -100, &InverterReading::temperature_c},
}};
// 15-20 differs per inverter; 28-48 starts with digits that scale with the inverter's power
// (perhaps AC power in 1/10 W: 329 and 1457 against 35 W and 155 W DC). Kept raw until proven.
constexpr std::array kBlockUnknown{UnknownSpan{15, 5}, UnknownSpan{28, 20}};

constexpr std::size_t kChannelSize = 20;
constexpr std::size_t kChannelNumberOffset = 0;
// Voltage is read as bytes 1-6 and current as 6-10 (not the peers' 12-15): with these, voltage
// times current matches the reported power on every channel of the real capture (see
// tests/test_decoder.cpp, "physical sense").
constexpr std::array<ScaledField<ChannelReading>, 3> kChannelNumbers{{
    {1, 5, "DC voltage in 1/10 V", 10, 0, &ChannelReading::voltage_v},
    {6, 4, "DC current in 1/100 A", 100, 0, &ChannelReading::current_a},
    {15, 3, "DC power in W", 1, 0, &ChannelReading::power_w},
}};
// 10-15 fits the energy of the reporting interval in mWh on all six captured channels
// (hypothesis); 18-20 is unknown.
constexpr std::array kChannelUnknown{UnknownSpan{10, 5}, UnknownSpan{18, 2}};

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

bool all_digits(std::string_view s) {
    if (s.empty())
        return false;
    for (char c : s)
        if (!is_digit(c))
            return false;
    return true;
}

// Error messages show a short, escaped excerpt of what was found.
std::string printable(std::string_view s) {
    return printable_text(s, false, 24);
}

// Reads fixed-width fields out of one part of the message. The first failure is kept with its
// absolute offset; later reads on a failed reader return zero values and are ignored.
class FieldReader {
  public:
    FieldReader(std::string_view message, std::size_t base, std::size_t part_size,
                std::optional<DecodeError>& error)
        : message_(message), base_(base), part_size_(part_size), error_(error) {}

    std::string_view text(std::size_t offset, std::size_t width, std::string_view what) {
        if (error_)
            return {};
        if (offset + width > part_size_) {
            fail(offset, "expected " + std::string(what) + " (" + std::to_string(width) +
                             " bytes), found the end of the part");
            return {};
        }
        return message_.substr(base_ + offset, width);
    }

    std::string_view digits(std::size_t offset, std::size_t width, std::string_view what) {
        const auto field = text(offset, width, what);
        if (error_)
            return {};
        if (!all_digits(field)) {
            fail(offset, "expected " + std::to_string(width) + " digits (" + std::string(what) +
                             "), found \"" + printable(field) + "\"");
            return {};
        }
        return field;
    }

    long long integer(std::size_t offset, std::size_t width, std::string_view what) {
        long long value = 0;
        for (char c : digits(offset, width, what))
            value = value * 10 + (c - '0');
        return value;
    }

    template <class Target, std::size_t N>
    void scaled(const std::array<ScaledField<Target>, N>& fields, Target& target) {
        for (const auto& f : fields) {
            const auto raw = static_cast<double>(integer(f.offset, f.width, f.what));
            target.*f.member = raw / f.divisor + f.bias;
        }
    }

    template <std::size_t N> UnknownFields unknown(const std::array<UnknownSpan, N>& spans) {
        UnknownFields out;
        for (const auto& s : spans) {
            // Not checked to be digits (their meaning is unknown), so escape what is not text.
            const auto field = text(s.offset, s.width, "an unknown field");
            out.emplace_back("bytes_" + std::to_string(s.offset) + "_" +
                                 std::to_string(s.offset + s.width),
                             printable_text(field, false));
        }
        return out;
    }

    void fail(std::size_t offset, std::string reason) {
        if (!error_)
            error_ = DecodeError{base_ + offset, std::move(reason)};
    }

  private:
    std::string_view message_;
    std::size_t base_;
    std::size_t part_size_;
    std::optional<DecodeError>& error_;
};

// `AA302` -> 302: the length field is left-padded with `A`.
std::optional<long long> parse_a_padded(std::string_view field) {
    std::size_t i = 0;
    while (i < field.size() && field[i] == 'A')
        ++i;
    const auto number = field.substr(i);
    if (!all_digits(number))
        return std::nullopt;
    long long value = 0;
    for (char c : number)
        value = value * 10 + (c - '0');
    return value;
}

ChannelReading decode_channel(FieldReader& reader, int expected_number,
                              std::vector<std::string>& notes, std::string_view uid) {
    ChannelReading ch;
    ch.channel = static_cast<int>(reader.integer(kChannelNumberOffset, 1, "channel number"));
    reader.scaled(kChannelNumbers, ch);
    ch.unknown = reader.unknown(kChannelUnknown);
    if (ch.channel != expected_number) {
        notes.push_back("inverter " + std::string(uid) + ": channel record " +
                        std::to_string(expected_number) + " numbers itself " +
                        std::to_string(ch.channel));
    }
    return ch;
}

InverterReading decode_block(std::string_view message, std::size_t block_start,
                             std::size_t block_size, std::vector<std::string>& notes,
                             std::optional<DecodeError>& error) {
    FieldReader reader(message, block_start, block_size, error);
    InverterReading inv;
    if (block_size < kBlockFixedSize || (block_size - kBlockFixedSize) % kChannelSize != 0) {
        reader.fail(0, "expected an inverter block of 48 + 20 * channels bytes, found " +
                           std::to_string(block_size) + " bytes");
        return inv;
    }
    inv.uid = std::string(reader.digits(kUidOffset, kUidWidth, "inverter UID"));
    inv.model_code = inv.uid.substr(0, std::min(inv.uid.size(), kModelCodeWidth));
    inv.model = inverter_model_name(inv.model_code);
    reader.scaled(kBlockNumbers, inv);
    inv.unknown = reader.unknown(kBlockUnknown);

    const auto channel_count = static_cast<int>((block_size - kBlockFixedSize) / kChannelSize);
    if (const auto family = find_inverter_family(inv.model_code);
        family && family->channels != channel_count) {
        notes.push_back("inverter " + inv.uid + ": " + std::string(family->name) + " has " +
                        std::to_string(family->channels) + " channels, block has " +
                        std::to_string(channel_count));
    }
    for (int k = 0; k < channel_count; ++k) {
        FieldReader channel_reader(message, block_start + kBlockFixedSize + k * kChannelSize,
                                   kChannelSize, error);
        inv.channels.push_back(decode_channel(channel_reader, k + 1, notes, inv.uid));
        inv.power_w += inv.channels.back().power_w;
    }
    return inv;
}

DecodeResult decode_realtime(std::string_view message) {
    std::optional<DecodeError> error;
    FieldReader header(message, 0, message.size(), error);
    RealtimeUpload up;
    up.signature = std::string(kRealtimeSignature);

    const auto length = parse_a_padded(header.text(kLengthOffset, kLengthWidth, "length field"));
    if (error)
        return *error;
    if (!length)
        return DecodeError{kLengthOffset, "expected the length as digits left-padded with 'A', "
                                          "found \"" +
                                              printable(message.substr(kLengthOffset, 5)) + "\""};
    if (*length + 1 != static_cast<long long>(message.size()))
        return DecodeError{kLengthOffset, "length field says " + std::to_string(*length + 1) +
                                              " bytes, message has " +
                                              std::to_string(message.size())};
    if (message.size() < kHeaderSize + kTrailer.size())
        return DecodeError{message.size(), "expected at least " +
                                               std::to_string(kHeaderSize + kTrailer.size()) +
                                               " bytes (header and trailer)"};
    if (!message.ends_with(kTrailer))
        return DecodeError{message.size() - kTrailer.size(),
                           "expected the trailer \"END\\n\", found \"" +
                               printable(message.substr(message.size() - kTrailer.size())) + "\""};

    up.ecu_id = std::string(header.digits(kEcuIdOffset, kEcuIdWidth, "ECU id"));
    up.ecu_model = std::string(ecu_model_name(up.ecu_id));
    header.scaled(kHeaderNumbers, up);
    const auto stamp_text = header.digits(kTimestampOffset, kTimestampWidth, "timestamp");
    if (error)
        return *error;
    const auto stamp = parse_compact_timestamp(stamp_text);
    if (!stamp)
        return DecodeError{kTimestampOffset, "expected a timestamp YYYYMMDDhhmmss, found \"" +
                                                 printable(stamp_text) + "\""};
    up.timestamp = *stamp;
    up.inverters_online = static_cast<int>(
        header.integer(kInvertersOnlineOffset, kInvertersOnlineWidth, "inverters online"));
    up.unknown = header.unknown(kHeaderUnknown);
    if (error)
        return *error;

    // Inverter blocks: each starts with `END`; the body holds only digits, so `END` cannot occur
    // inside a block and marks block boundaries unambiguously.
    const std::size_t body_end = message.size() - kTrailer.size();
    std::size_t pos = kHeaderSize;
    if (pos < body_end && message.substr(pos, kBlockMarker.size()) != kBlockMarker)
        return DecodeError{pos, "expected \"END\" starting an inverter block, found \"" +
                                    printable(message.substr(pos, 3)) + "\""};
    while (pos < body_end) {
        std::size_t next = message.find(kBlockMarker, pos + kBlockMarker.size());
        if (next == std::string_view::npos || next > body_end)
            next = body_end;
        auto inverter = decode_block(message, pos, next - pos, up.notes, error);
        if (error) {
            up.skipped_blocks.push_back(
                {pos, error->offset, error->reason, std::string(message.substr(pos, next - pos))});
            up.notes.push_back("inverter block at offset " + std::to_string(pos) +
                               " left out: " + error->describe());
            error.reset();
        } else {
            up.inverters.push_back(std::move(inverter));
        }
        pos = next;
    }

    if (up.inverters_online != static_cast<int>(up.inverters.size() + up.skipped_blocks.size()))
        up.notes.push_back("header says " + std::to_string(up.inverters_online) +
                           " inverters online, message has " +
                           std::to_string(up.inverters.size() + up.skipped_blocks.size()) +
                           " blocks");
    double channel_sum = 0;
    for (const auto& inv : up.inverters)
        channel_sum += inv.power_w;
    // The header has 1/100 W resolution, channels whole watts: allow one watt per channel.
    std::size_t channel_count = 0;
    for (const auto& inv : up.inverters)
        channel_count += inv.channels.size();
    if (!up.inverters.empty() &&
        std::abs(channel_sum - up.power_w) > static_cast<double>(channel_count) + 0.5)
        up.notes.push_back("channel powers sum to " + std::to_string(channel_sum) +
                           " W, header says " + std::to_string(up.power_w) + " W");
    return EcuMessage{std::move(up)};
}

// `ECU11` + 4-digit total length + 4-digit command + payload (+ `END`). Peers' reading.
DecodeResult decode_control(std::string_view message) {
    std::optional<DecodeError> error;
    FieldReader reader(message, 0, message.size(), error);
    ControlMessage control;
    control.length = static_cast<int>(reader.integer(5, 4, "control message length"));
    control.command = std::string(reader.digits(9, 4, "control command"));
    if (error)
        return *error;
    if (control.length != static_cast<int>(message.size()))
        return DecodeError{5, "length field says " + std::to_string(control.length) +
                                  " bytes, message has " + std::to_string(message.size())};
    auto payload = message.substr(13);
    if (payload.size() >= kEcuIdWidth && all_digits(payload.substr(0, kEcuIdWidth)) &&
        payload.substr(0, 4).starts_with("21"))
        control.ecu_id = std::string(payload.substr(0, kEcuIdWidth));
    control.payload = std::string(payload);
    return EcuMessage{std::move(control)};
}

DecodeResult decode_other_aps(std::string_view message) {
    OtherApsMessage other;
    other.signature = std::string(message.substr(0, 5));
    other.ecu_id = guess_ecu_id(message);
    other.timestamp = guess_timestamp(message);
    return EcuMessage{std::move(other)};
}

} // namespace

std::optional<std::string> guess_ecu_id(std::string_view message) {
    if (message.size() < kEcuIdOffset + kEcuIdWidth)
        return std::nullopt;
    const auto id = message.substr(kEcuIdOffset, kEcuIdWidth);
    if (!all_digits(id))
        return std::nullopt;
    return std::string(id);
}

std::optional<LocalDateTime> guess_timestamp(std::string_view message) {
    if (message.size() < kTimestampOffset + kTimestampWidth)
        return std::nullopt;
    return parse_compact_timestamp(message.substr(kTimestampOffset, kTimestampWidth));
}

DecodeResult decode_message(std::string_view message) {
    if (message.empty())
        return DecodeError{0, "expected a message, found nothing"};
    if (message.starts_with(kRealtimeSignature))
        return decode_realtime(message);
    if (message.starts_with(kControlSignature))
        return decode_control(message);
    if (message.size() >= 5 && message.starts_with("APS") && is_digit(message[3]) &&
        is_digit(message[4]))
        return decode_other_aps(message);
    return DecodeError{0, "expected a message starting with \"APS\" and a version or \"ECU11\", "
                          "found \"" +
                              printable(message.substr(0, 5)) + "\""};
}

std::optional<std::string> ecu_id_of(const EcuMessage& message) {
    if (const auto* up = std::get_if<RealtimeUpload>(&message))
        return up->ecu_id;
    if (const auto* control = std::get_if<ControlMessage>(&message))
        return control->ecu_id;
    return std::get<OtherApsMessage>(message).ecu_id;
}

std::optional<LocalDateTime> timestamp_of(const EcuMessage& message) {
    if (const auto* up = std::get_if<RealtimeUpload>(&message))
        return up->timestamp;
    if (const auto* other = std::get_if<OtherApsMessage>(&message))
        return other->timestamp;
    return std::nullopt;
}

const char* message_type_name(const EcuMessage& message) {
    if (std::holds_alternative<RealtimeUpload>(message))
        return "realtime";
    if (std::holds_alternative<ControlMessage>(message))
        return "control";
    return "other";
}

} // namespace ecu2mqtt
