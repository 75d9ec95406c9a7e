#include "ecu2mqtt/protocol/decoder.hpp"
#include "ecu2mqtt/protocol/ema_reply.hpp"
#include "support/test_paths.hpp"

#include <catch2/catch.hpp>

using namespace ecu2mqtt;

namespace {

LocalDateTime at(const char* compact) {
    return *parse_compact_timestamp(compact);
}

} // namespace

TEST_CASE("a real-time upload is answered with 101 and its timestamp minus five minutes") {
    // What the field-proven script sends for the captured upload: 17 ASCII bytes, no newline.
    const auto decoded = decode_message(test::captured_upload());
    ReplyInput input;
    input.message_time = timestamp_of(*decoded_message(decoded));
    input.local_now = at("20261125093000");
    const auto reply = fake_ema_reply(input);
    CHECK(reply.bytes == "10120240206111714");
    CHECK(reply.rule == ReplyRule::UploadTimestamp);
}

TEST_CASE("five minutes back crosses midnight, month, leap day and year") {
    const std::vector<std::pair<const char*, const char*>> cases{
        {"20240301000200", "10120240229235700"},
        {"20230301000200", "10120230228235700"},
        {"20250101000000", "10120241231235500"},
        {"20240206000500", "10120240206000000"},
    };
    for (const auto& [stamp, expected] : cases) {
        ReplyInput input;
        input.message_time = at(stamp);
        CHECK(fake_ema_reply(input).bytes == expected);
    }
}

TEST_CASE("a message without a timestamp gets what the ECU was last told, else the clock") {
    ReplyInput input;
    input.local_now = at("20261125093000");
    CHECK(fake_ema_reply(input).bytes == "10120261125092500");
    CHECK(fake_ema_reply(input).rule == ReplyRule::ServiceClock);

    input.last_acknowledged = at("20240206111714");
    CHECK(fake_ema_reply(input).bytes == "10120240206111714");
    CHECK(fake_ema_reply(input).rule == ReplyRule::LastAcknowledged);
}

TEST_CASE("control messages get no invented answer") {
    ReplyInput input;
    input.is_control = true;
    input.message_time = at("20240206112214");
    const auto reply = fake_ema_reply(input);
    CHECK(reply.rule == ReplyRule::NoReply);
    CHECK(reply.bytes.empty());
}

TEST_CASE("timestamps are validated as calendar moments") {
    CHECK_FALSE(parse_compact_timestamp("20230229120000"));
    CHECK(parse_compact_timestamp("20240229120000"));
    CHECK_FALSE(parse_compact_timestamp("20241301120000"));
    CHECK_FALSE(parse_compact_timestamp("20240101246000"));
    CHECK_FALSE(parse_compact_timestamp("2024010112000"));
    CHECK_FALSE(parse_compact_timestamp("2024010112000x"));
}
