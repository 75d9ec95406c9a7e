#include "ecu2mqtt/protocol/decoder.hpp"

#include "field_reader.hpp"

#include "ecu2mqtt/protocol/inverter_models.hpp"
#include "ecu2mqtt/protocol/printable.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

namespace ecu2mqtt {
namespace {

using namespace decoding;

// ---- The APS18 layout, as data. Offsets are relative to the start of the part they describe:
// the message for the header, the `E` of `END` for an inverter block, the record for a channel.

constexpr std::string_view kRealtimeSignature = "APS18";
constexpr std::string_view kControlSignature = "ECU11";
constexpr std::string_view kBlockMarker = "END";
constexpr std::string_view kTrailer = "END\n";

constexpr std::size_t kLengthOffset = 5, kLengthWidth = 5;
constexpr std::size_t kEcuIdOffset = 18, kEcuIdWidth = 12;
constexpr std::size_t kTimestampOffset = 60, kTimestampWidth = 14;
constexpr std::size_t kInvertersOnlineOffset = 74, kInvertersOnlineWidth = 3;
constexpr std::size_t kHeaderSize = 83;

constexpr std::array<ScaledField<RealtimeView>, 2> kHeaderNumbers{{
    {30, 12, "ECU power in 1/100 W", 100, 0, &RealtimeView::power_w},
    {42, 18, "lifetime energy in 1/10 kWh", 10, 0, &RealtimeView::lifetime_energy_kwh},
}};
// 10-18 is `A`-padded like the length (a command or sequence number?); 77-83 is digits.
constexpr std::array kHeaderUnknown{UnknownSpan{10, 8, "bytes_10_18"},
                                    UnknownSpan{77, 6, "bytes_77_83"}};

constexpr std::size_t kUidOffset = 3, kUidWidth = 12, kModelCodeWidth = 3;
constexpr std::size_t kBlockFixedSize = 48;
constexpr std::array<ScaledField<InverterView>, 2> kBlockNumbers{{
    {20, 5, "grid frequency in 1/10 Hz", 10, 0, &InverterView::frequency_hz},
    {25, 3, "temperature in °C + 100", 1, -100, &InverterView::temperature_c},
}};
// 15-20 differs per inverter; 28-48 starts with digits that scale with the inverter's power
// (perhaps AC power in 1/10 W: 329 and 1457 against 35 W and 155 W DC). Kept raw until proven.
constexpr std::array kBlockUnknown{UnknownSpan{15, 5, "bytes_15_20"},
                                   UnknownSpan{28, 20, "bytes_28_48"}};

constexpr std::size_t kChannelSize = 20;
constexpr std::size_t kChannelNumberOffset = 0;
// Voltage is read as bytes 1-6 and current as 6-10 (not the peers' 12-15): with these, voltage
// times current matches the reported power on every channel of the real capture (see
// tests/test_decoder.cpp, "physical sense").
constexpr std::array<ScaledField<ChannelView>, 3> kChannelNumbers{{
    {1, 5, "DC voltage in 1/10 V", 10, 0, &ChannelView::voltage_v},
    {6, 4, "DC current in 1/100 A", 100, 0, &ChannelView::current_a},
    {15, 3, "DC power in W", 1, 0, &ChannelView::power_w},
}};
// 10-15 fits the energy of the reporting interval in mWh on all six captured channels
// (hypothesis); 18-20 is unknown.
constexpr std::array kChannelUnknown{UnknownSpan{10, 5, "bytes_10_15"},
                                     UnknownSpan{18, 2, "bytes_18_20"}};

// The keys are spelled out so that decoding need not build them; they must name the offsets.
constexpr bool key_names_offsets(const UnknownSpan& span) {
    std::string_view key = span.key;
    const auto take_number = [&key](std::size_t expected) {
        std::size_t value = 0, digits = 0;
        while (digits < key.size() && key[digits] >= '0' && key[digits] <= '9')
            value = value * 10 + static_cast<std::size_t>(key[digits++] - '0');
        key.remove_prefix(digits);
        return digits > 0 && value == expected;
    };
    if (!key.starts_with("bytes_"))
        return false;
    key.remove_prefix(6);
    if (!take_number(span.offset) || !key.starts_with("_"))
        return false;
    key.remove_prefix(1);
    return take_number(span.offset + span.width) && key.empty();
}
template <std::size_t N> constexpr bool keys_name_offsets(const std::array<UnknownSpan, N>& spans) {
    return std::all_of(spans.begin(), spans.end(), key_names_offsets);
}
static_assert(keys_name_offsets(kHeaderUnknown) && keys_name_offsets(kBlockUnknown) &&
              keys_name_offsets(kChannelUnknown));

constexpr std::size_t kUnknownPerBlock = kBlockUnknown.size();
constexpr std::size_t kUnknownPerChannel = kChannelUnknown.size();

// One decode of one real-time upload into a RealtimeView.
class RealtimeDecoding {
  public:
    RealtimeDecoding(std::string_view message, RealtimeView& out)
        : message_(message), out_(out), storage_(out.storage),
          writer_(out.storage.scratch, out.storage.text) {}

    bool run() {
        clear();
        if (!message_.starts_with(kRealtimeSignature))
            return error(0, "expected a real-time upload starting with \"APS18\", found \"",
                         Excerpt{message_.substr(0, 5)}, "\"");
        out_.signature = message_.substr(0, kRealtimeSignature.size());
        if (!decode_header() || !find_blocks())
            return false;
        reserve_for_blocks();
        for (std::size_t i = 0; i + 1 < storage_.block_starts.size(); ++i)
            decode_block(storage_.block_starts[i], storage_.block_starts[i + 1]);
        check_totals();
        return true;
    }

  private:
    void clear() {
        out_.inverters.clear();
        out_.unknown.clear();
        out_.notes.clear();
        out_.skipped_blocks.clear();
        out_.error = {};
        storage_.channels.clear();
        storage_.unknown_fields.clear();
        storage_.block_starts.clear();
        storage_.text.clear();
    }

    template <class... Pieces> bool error(std::size_t offset, const Pieces&... pieces) {
        out_.error = {offset, writer_.write(pieces...)};
        return false;
    }

    template <class... Pieces> void note(const Pieces&... pieces) {
        out_.notes.push_back(writer_.write(pieces...));
    }

    bool decode_header() {
        Failure failure;
        FieldReader header(message_, 0, message_.size(), failure, writer_);
        const auto length =
            parse_a_padded(header.text(kLengthOffset, kLengthWidth, "length field"));
        if (failure.failed)
            return error(failure.offset, failure.reason);
        if (!length)
            return error(kLengthOffset,
                         "expected the length as digits left-padded with 'A', found \"",
                         Excerpt{message_.substr(kLengthOffset, 5)}, "\"");
        if (*length + 1 != static_cast<long long>(message_.size()))
            return error(kLengthOffset, "length field says ", *length + 1, " bytes, message has ",
                         message_.size());
        if (message_.size() < kHeaderSize + kTrailer.size())
            return error(message_.size(), "expected at least ", kHeaderSize + kTrailer.size(),
                         " bytes (header and trailer)");
        if (!message_.ends_with(kTrailer))
            return error(message_.size() - kTrailer.size(),
                         "expected the trailer \"END\\n\", found \"",
                         Excerpt{message_.substr(message_.size() - kTrailer.size())}, "\"");

        out_.ecu_id = header.digits(kEcuIdOffset, kEcuIdWidth, "ECU id");
        out_.ecu_model = ecu_model_name(out_.ecu_id);
        header.scaled(kHeaderNumbers, out_);
        const auto stamp_text = header.digits(kTimestampOffset, kTimestampWidth, "timestamp");
        if (failure.failed)
            return error(failure.offset, failure.reason);
        const auto stamp = parse_compact_timestamp(stamp_text);
        if (!stamp)
            return error(kTimestampOffset, "expected a timestamp YYYYMMDDhhmmss, found \"",
                         Excerpt{stamp_text}, "\"");
        out_.timestamp = *stamp;
        out_.inverters_online = static_cast<int>(
            header.integer(kInvertersOnlineOffset, kInvertersOnlineWidth, "inverters online"));
        header.unknown(kHeaderUnknown, out_.unknown);
        if (failure.failed)
            return error(failure.offset, failure.reason);
        return true;
    }

    // Inverter blocks: each starts with `END`; the body holds only digits, so `END` cannot occur
    // inside a block and marks block boundaries unambiguously.
    bool find_blocks() {
        const std::size_t body_end = message_.size() - kTrailer.size();
        std::size_t pos = kHeaderSize;
        if (pos < body_end && message_.substr(pos, kBlockMarker.size()) != kBlockMarker)
            return error(pos, "expected \"END\" starting an inverter block, found \"",
                         Excerpt{message_.substr(pos, 3)}, "\"");
        while (pos < body_end) {
            storage_.block_starts.push_back(pos);
            std::size_t next = message_.find(kBlockMarker, pos + kBlockMarker.size());
            if (next == std::string_view::npos || next > body_end)
                next = body_end;
            pos = next;
        }
        storage_.block_starts.push_back(body_end);
        return true;
    }

    static bool valid_block_size(std::size_t size) {
        return size >= kBlockFixedSize && (size - kBlockFixedSize) % kChannelSize == 0;
    }

    // Room for every block's channels and unknown fields, so that the spans into them stay valid
    // while later blocks are added.
    void reserve_for_blocks() {
        const auto& starts = storage_.block_starts;
        std::size_t channels = 0, blocks = starts.size() - 1;
        for (std::size_t i = 0; i < blocks; ++i)
            if (const auto size = starts[i + 1] - starts[i]; valid_block_size(size))
                channels += (size - kBlockFixedSize) / kChannelSize;
        out_.inverters.reserve(blocks);
        storage_.channels.reserve(channels);
        storage_.unknown_fields.reserve(blocks * kUnknownPerBlock + channels * kUnknownPerChannel);
    }

    void decode_channel(FieldReader& reader, ChannelView& ch, int expected_number,
                        std::string_view uid) {
        ch.channel = static_cast<int>(reader.integer(kChannelNumberOffset, 1, "channel number"));
        reader.scaled(kChannelNumbers, ch);
        const auto first_unknown = storage_.unknown_fields.size();
        reader.unknown(kChannelUnknown, storage_.unknown_fields);
        ch.unknown = {storage_.unknown_fields.data() + first_unknown, kUnknownPerChannel};
        if (ch.channel != expected_number)
            note("inverter ", uid, ": channel record ", expected_number, " numbers itself ",
                 ch.channel);
    }

    void decode_block(std::size_t block_start, std::size_t block_end) {
        const std::size_t block_size = block_end - block_start;
        const auto first_channel = storage_.channels.size();
        const auto first_unknown = storage_.unknown_fields.size();
        Failure failure;
        FieldReader reader(message_, block_start, block_size, failure, writer_);
        InverterView inv;
        if (!valid_block_size(block_size)) {
            reader.fail(0, "expected an inverter block of 48 + 20 * channels bytes, found ",
                        block_size, " bytes");
        } else {
            inv.uid = reader.digits(kUidOffset, kUidWidth, "inverter UID");
            inv.model_code = inv.uid.substr(0, std::min(inv.uid.size(), kModelCodeWidth));
            const auto family = find_inverter_family(inv.model_code);
            inv.model = family ? family->name : writer_.write("unknown model ", inv.model_code);
            reader.scaled(kBlockNumbers, inv);
            reader.unknown(kBlockUnknown, storage_.unknown_fields);
            inv.unknown = {storage_.unknown_fields.data() + first_unknown, kUnknownPerBlock};

            const auto channel_count =
                static_cast<int>((block_size - kBlockFixedSize) / kChannelSize);
            if (family && family->channels != channel_count)
                note("inverter ", inv.uid, ": ", family->name, " has ", family->channels,
                     " channels, block has ", channel_count);
            // After a failure the records that follow read as zeros, and their notes ("numbers
            // itself 0") say which records were not read.
            for (int k = 0; k < channel_count; ++k) {
                FieldReader channel_reader(message_,
                                           block_start + kBlockFixedSize + k * kChannelSize,
                                           kChannelSize, failure, writer_);
                auto& ch = storage_.channels.emplace_back();
                decode_channel(channel_reader, ch, k + 1, inv.uid);
                inv.power_w += ch.power_w;
            }
            inv.channels = {storage_.channels.data() + first_channel,
                            storage_.channels.size() - first_channel};
        }
        if (failure.failed) {
            // The block's records are dropped with it; the room reserved for them is reused.
            storage_.channels.resize(first_channel);
            storage_.unknown_fields.resize(first_unknown);
            const auto raw = message_.substr(block_start, block_size);
            out_.skipped_blocks.push_back({block_start, failure.offset, failure.reason, raw});
            note("inverter block at offset ", block_start, " left out: offset ", failure.offset,
                 ": ", failure.reason);
        } else {
            out_.inverters.push_back(inv);
        }
    }

    void check_totals() {
        const auto blocks = out_.inverters.size() + out_.skipped_blocks.size();
        if (out_.inverters_online != static_cast<int>(blocks))
            note("header says ", out_.inverters_online, " inverters online, message has ", blocks,
                 " blocks");
        double channel_sum = 0;
        for (const auto& inv : out_.inverters)
            channel_sum += inv.power_w;
        // The header has 1/100 W resolution, channels whole watts: allow one watt per channel.
        if (!out_.inverters.empty() && std::abs(channel_sum - out_.power_w) >
                                           static_cast<double>(storage_.channels.size()) + 0.5)
            note("channel powers sum to ", FixedPoint{channel_sum}, " W, header says ",
                 FixedPoint{out_.power_w}, " W");
    }

    std::string_view message_;
    RealtimeView& out_;
    RealtimeView::Storage& storage_;
    TextWriter writer_;
};

// `ECU11` + 4-digit total length + 4-digit command + payload (+ `END`). Peers' reading.
DecodeResult decode_control(std::string_view message) {
    std::string scratch;
    TextArena arena;
    TextWriter writer(scratch, arena);
    Failure failure;
    FieldReader reader(message, 0, message.size(), failure, writer);
    ControlMessage control;
    control.length = static_cast<int>(reader.integer(5, 4, "control message length"));
    control.command = std::string(reader.digits(9, 4, "control command"));
    if (failure.failed)
        return DecodeError{failure.offset, std::string(failure.reason)};
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

UnknownFields owning_unknown(std::span<const UnknownFieldView> fields) {
    UnknownFields out;
    out.reserve(fields.size());
    for (const auto& f : fields)
        out.emplace_back(std::string(f.key), printable_text(f.raw, false));
    return out;
}

} // namespace

std::string_view TextArena::keep(std::string_view text) {
    constexpr std::size_t kBlockSize = 4096;
    if (blocks_.empty() || used_ + text.size() > blocks_[current_].capacity) {
        if (!blocks_.empty())
            ++current_;
        used_ = 0;
        // The blocks after the current one hold nothing in use: one too small is replaced.
        if (current_ == blocks_.size())
            blocks_.emplace_back();
        auto& block = blocks_[current_];
        if (block.capacity < text.size()) {
            block.capacity = std::max(kBlockSize, text.size());
            block.bytes = std::make_unique_for_overwrite<char[]>(block.capacity);
        }
    }
    char* at = blocks_[current_].bytes.get() + used_;
    if (!text.empty())
        std::memcpy(at, text.data(), text.size());
    used_ += text.size();
    return {at, text.size()};
}

void TextArena::clear() {
    current_ = 0;
    used_ = 0;
}

bool decode_realtime_into(std::string_view message, RealtimeView& out) {
    return RealtimeDecoding(message, out).run();
}

RealtimeUpload to_realtime_upload(const RealtimeView& view) {
    RealtimeUpload up;
    up.signature = std::string(view.signature);
    up.ecu_id = std::string(view.ecu_id);
    up.ecu_model = std::string(view.ecu_model);
    up.power_w = view.power_w;
    up.lifetime_energy_kwh = view.lifetime_energy_kwh;
    up.timestamp = view.timestamp;
    up.inverters_online = view.inverters_online;
    up.inverters.reserve(view.inverters.size());
    for (const auto& inv : view.inverters) {
        InverterReading reading;
        reading.uid = std::string(inv.uid);
        reading.model_code = std::string(inv.model_code);
        reading.model = std::string(inv.model);
        reading.frequency_hz = inv.frequency_hz;
        reading.temperature_c = inv.temperature_c;
        reading.power_w = inv.power_w;
        reading.channels.reserve(inv.channels.size());
        for (const auto& ch : inv.channels)
            reading.channels.push_back(
                {ch.channel, ch.voltage_v, ch.current_a, ch.power_w, owning_unknown(ch.unknown)});
        reading.unknown = owning_unknown(inv.unknown);
        up.inverters.push_back(std::move(reading));
    }
    up.unknown = owning_unknown(view.unknown);
    up.notes.assign(view.notes.begin(), view.notes.end());
    for (const auto& block : view.skipped_blocks)
        up.skipped_blocks.push_back(
            {block.offset, block.error_offset, std::string(block.reason), std::string(block.raw)});
    return up;
}

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
    RealtimeView view;
    return decode_message(message, view);
}

DecodeResult decode_message(std::string_view message, RealtimeView& view) {
    if (message.empty())
        return DecodeError{0, "expected a message, found nothing"};
    if (message.starts_with(kRealtimeSignature)) {
        if (!decode_realtime_into(message, view))
            return DecodeError{view.error.offset, std::string(view.error.reason)};
        return EcuMessage{to_realtime_upload(view)};
    }
    if (message.starts_with(kControlSignature))
        return decode_control(message);
    if (message.size() >= 5 && message.starts_with("APS") && is_digit(message[3]) &&
        is_digit(message[4]))
        return decode_other_aps(message);
    return DecodeError{0, "expected a message starting with \"APS\" and a version or \"ECU11\", "
                          "found \"" +
                              printable_text(message.substr(0, 5), false, 24) + "\""};
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
