// The allocation-free decoding path: same result as decode_message(), views into the message,
// and one result reused across uploads of every shape without anything left over.
#include "ecu2mqtt/protocol/decoder.hpp"
#include "ecu2mqtt/protocol/message_json.hpp"
#include "ecu2mqtt/protocol/printable.hpp"
#include "support/test_paths.hpp"
#include "support/upload_builder.hpp"

#include <algorithm>
#include <catch2/catch.hpp>

using namespace ecu2mqtt;

namespace test_decoder_view {
namespace {

// Everything decode_message() says about a message, as one text: the `decode` JSON (values,
// unknown fields, notes, skipped blocks) plus the skipped blocks' reasons and raw bytes.
std::string everything_about(const DecodeResult& result, std::string_view bytes) {
    if (const auto* error = decode_error(result))
        return "error at " + error->describe();
    std::string text = message_to_json(*decoded_message(result), bytes).dump();
    if (const auto* up = std::get_if<RealtimeUpload>(decoded_message(result)))
        for (const auto& block : up->skipped_blocks)
            text += "\nskipped " + std::to_string(block.offset) + " " +
                    std::to_string(block.error_offset) + " " + block.reason + " " + block.raw;
    return text;
}

// The same text from the fast path, decoding into `view`.
std::string everything_about_view(std::string_view bytes, RealtimeView& view) {
    if (!decode_realtime_into(bytes, view))
        return "error at " +
               DecodeError{view.error.offset, std::string(view.error.reason)}.describe();
    return everything_about(EcuMessage{to_realtime_upload(view)}, bytes);
}

bool points_into(std::string_view part, std::string_view message) {
    return part.data() >= message.data() &&
           part.data() + part.size() <= message.data() + message.size();
}

std::string upload_of(int inverters, int channels) {
    test::UploadSpec spec;
    for (int i = 0; i < inverters; ++i)
        spec.inverters.push_back(
            test::inverter_with("8060000" + test::zero_padded(i, 5), channels, 80));
    spec.centiwatts = inverters * channels * 80LL * 100;
    return test::build_upload(spec);
}

// The length field made to match the message again after an edit, so decoding goes past it.
std::string with_length_fixed(std::string bytes) {
    const auto length = std::to_string(bytes.size() - 1);
    if (bytes.size() >= 10 && length.size() <= 5)
        bytes.replace(5, 5, std::string(5 - length.size(), 'A') + length);
    return bytes;
}

} // namespace

TEST_CASE("the real capture decodes into views of the message, with decode_message()'s values") {
    const std::string bytes = test::captured_upload();
    RealtimeView view;
    REQUIRE(decode_realtime_into(bytes, view));
    CHECK(view.ecu_id == "216000064136");
    CHECK(view.ecu_model == "ECU-R");
    CHECK(view.power_w == 190.0);
    CHECK(view.lifetime_energy_kwh == 2127.9);
    CHECK(format_iso(view.timestamp) == "2024-02-06T11:22:14");
    REQUIRE(view.inverters.size() == 2);
    const auto& qs1 = view.inverters[1];
    CHECK(qs1.uid == "806000011223");
    CHECK(qs1.model == "QS1");
    REQUIRE(qs1.channels.size() == 4);
    CHECK(qs1.channels[3].channel == 4);
    CHECK(qs1.channels[3].voltage_v == 32.9);
    CHECK(qs1.power_w == 155.0);
    REQUIRE(qs1.unknown.size() == 2);
    CHECK(qs1.unknown[1].key == "bytes_28_48");
    CHECK(qs1.unknown[1].raw == "00000014570000000000");
    CHECK(view.notes.empty());

    CHECK(points_into(view.ecu_id, bytes));
    CHECK(points_into(qs1.uid, bytes));
    CHECK(points_into(qs1.channels[0].unknown[0].raw, bytes));

    CHECK(everything_about_view(bytes, view) == everything_about(decode_message(bytes), bytes));
}

TEST_CASE("unknown fields are views of the raw bytes; the owning copy escapes them") {
    std::string bytes = test::captured_upload();
    bytes[83 + 16] = '\xb0'; // inside the first block's unknown bytes 15-20
    RealtimeView view;
    REQUIRE(decode_realtime_into(bytes, view));
    CHECK(view.inverters[0].unknown[0].raw == "0\xb0"
                                              "228");
    CHECK(to_realtime_upload(view).inverters[0].unknown[0].second == "0\\xb0228");
}

TEST_CASE("an unknown model code is named like decode_message() names it") {
    test::UploadSpec spec;
    spec.inverters = {test::inverter_with("123000000001", 3, 10)};
    spec.centiwatts = 3000;
    const std::string bytes = test::build_upload(spec); // the views point into it
    RealtimeView view;
    REQUIRE(decode_realtime_into(bytes, view));
    CHECK(view.inverters[0].model == "unknown model 123");
    CHECK(view.inverters[0].model_code == "123");
}

// Views into a temporary string would dangle: such a call does not compile.
template <class Message>
constexpr bool decodes_from = requires(Message&& message, RealtimeView& view) {
    decode_realtime_into(std::forward<Message>(message), view);
};
static_assert(!decodes_from<std::string>);
static_assert(decodes_from<std::string&> && decodes_from<const std::string&> &&
              decodes_from<std::string_view> && decodes_from<const char (&)[6]>);

TEST_CASE("a message that is not a real-time upload is refused at offset 0") {
    RealtimeView view;
    for (const std::string bytes : {"", "APS19xxxx", "ECU1100320004216000064136", "\x01\x02"}) {
        INFO(bytes);
        CHECK_FALSE(decode_realtime_into(bytes, view));
        CHECK(view.error.offset == 0);
        CHECK_THAT(std::string(view.error.reason), Catch::Contains("APS18"));
    }
}

TEST_CASE("one reused result decodes uploads of every shape as a fresh decode_message() does") {
    const std::string capture = test::captured_upload();
    std::vector<std::string> messages{capture, upload_of(50, 4), upload_of(0, 4),
                                      capture, upload_of(3, 2),  upload_of(10, 4)};
    auto odd = test::captured_upload_spec();
    odd.inverters_online = 5;              // a note
    odd.inverters[0].uid = "999000000001"; // an unknown model
    odd.inverters[1].channels.resize(3);   // a QS1 with three channels: a note
    messages.push_back(test::build_upload(odd));
    // Every byte of the capture replaced by what breaks a field, a block or the framing, with the
    // length field fixed up or not; then every cut.
    for (std::size_t i = 0; i < capture.size(); ++i)
        for (const char c : std::string("x9E\n\xb0")) {
            std::string bad = capture;
            bad[i] = c;
            messages.push_back(bad);
        }
    for (std::size_t i = 83; i < capture.size(); i += 7) {
        for (const char* extra : {"1", "END", "00000000000000000000"}) {
            std::string longer = capture;
            longer.insert(i, extra);
            messages.push_back(with_length_fixed(longer));
        }
        std::string shorter = capture;
        shorter.erase(i, 20);
        messages.push_back(with_length_fixed(shorter));
    }
    for (std::size_t n = 0; n < capture.size(); ++n)
        messages.push_back(with_length_fixed(capture.substr(0, n)));

    RealtimeView view;
    std::size_t decoded = 0, skipped = 0, failed = 0;
    for (const auto& bytes : messages) {
        INFO(printable_text(bytes));
        const auto fresh = everything_about(decode_message(bytes), bytes);
        if (!bytes.starts_with("APS18"))
            continue;
        CHECK(everything_about_view(bytes, view) == fresh);
        failed += fresh.starts_with("error") ? 1 : 0;
        decoded += fresh.starts_with("error") ? 0 : 1;
        skipped += view.skipped_blocks.size();
    }
    // The list above reaches every kind of outcome.
    CHECK(decoded > 100);
    CHECK(skipped > 100);
    CHECK(failed > 100);
}

TEST_CASE("spans of earlier inverters stay valid while later ones are decoded") {
    const std::string bytes = upload_of(50, 4);
    RealtimeView view;
    const std::string smaller = test::captured_upload();
    REQUIRE(decode_realtime_into(smaller, view)); // the storage grows on the next one
    REQUIRE(decode_realtime_into(bytes, view));
    REQUIRE(view.inverters.size() == 50);
    for (std::size_t i = 0; i < view.inverters.size(); ++i) {
        const auto& inv = view.inverters[i];
        CHECK(inv.uid == "8060000" + test::zero_padded(static_cast<long long>(i), 5));
        REQUIRE(inv.channels.size() == 4);
        CHECK(inv.channels[3].channel == 4);
        CHECK(inv.channels[3].unknown[1].key == "bytes_18_20");
        CHECK(points_into(inv.channels[3].unknown[1].raw, bytes));
    }
}

TEST_CASE("a moved result keeps its views valid") {
    std::string bytes = test::captured_upload();
    bytes.replace(83 + 3, 1, "x"); // the first block is left out: reason and note in the arena
    RealtimeView view;
    REQUIRE(decode_realtime_into(bytes, view));
    RealtimeView moved = std::move(view);
    REQUIRE(moved.skipped_blocks.size() == 1);
    CHECK_THAT(std::string(moved.skipped_blocks[0].reason), Catch::Contains("inverter UID"));
    CHECK(std::any_of(moved.notes.begin(), moved.notes.end(), [](std::string_view note) {
        return note.starts_with("inverter block at offset 83 left out");
    }));
    CHECK(moved.inverters[0].channels[0].unknown[0].key == "bytes_10_15");
}

TEST_CASE("raw bytes as printable text: runs kept whole, the rest as \\xNN, cut at max_shown") {
    using std::string_literals::operator""s;
    const auto bytes = "\x01"s + "ab\ncd" + "\xff\x7f"s + "e\x00"s;
    CHECK(printable_text(bytes) == "\\x01ab\ncd\\xff\\x7fe\\x00");
    CHECK(printable_text(bytes, false) == "\\x01ab\\x0acd\\xff\\x7fe\\x00");
    CHECK(printable_text(bytes, true, 4) == "\\x01ab\n...");
    CHECK(printable_text("plain text") == "plain text");
    CHECK(printable_text("").empty());
    std::string out = "kept: ";
    append_printable_text(out, "a\tb");
    CHECK(out == "kept: a\\x09b");
}

} // namespace test_decoder_view
