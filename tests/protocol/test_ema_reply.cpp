#include "ecu2mqtt/protocol/decoder.hpp"
#include "ecu2mqtt/protocol/ema_reply.hpp"
#include "support/test_paths.hpp"

#include <catch2/catch.hpp>
#include <cstdio>
#include <random>

using namespace ecu2mqtt;

namespace test_ema_reply {
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

TEST_CASE("every valid timestamp, from year 0000 to 9999, is answered with 101 and 14 digits") {
    std::mt19937 random(20261126);
    std::vector<std::string> stamps{"00000101000000", "00000101000459", "00000101000500",
                                    "99991231235959", "00001231235959", "00000229120000"};
    for (int i = 0; i < 20000; ++i) {
        char stamp[15];
        const auto draw = [&](unsigned below) { return unsigned(random() % below); };
        std::snprintf(stamp, sizeof stamp, "%04u%02u%02u%02u%02u%02u", draw(10000), 1 + draw(12),
                      1 + draw(31), draw(24), draw(60), draw(60));
        stamps.emplace_back(stamp);
    }
    for (const auto& stamp : stamps) {
        const auto moment = parse_compact_timestamp(stamp);
        if (!moment)
            continue; // the 31st of a shorter month
        ReplyInput input;
        input.message_time = *moment;
        const auto reply = fake_ema_reply(input).bytes;
        INFO(stamp << " -> " << reply);
        REQUIRE(reply.size() == 17);
        REQUIRE(reply.starts_with("101"));
        REQUIRE(reply.find_first_not_of("0123456789") == std::string::npos);
        REQUIRE(parse_compact_timestamp(reply.substr(3)));
        REQUIRE(reply.substr(3) <= stamp);
    }
    ReplyInput earliest;
    earliest.message_time = at("00000101000200");
    CHECK(fake_ema_reply(earliest).bytes == "10100000101000000");
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

} // namespace test_ema_reply
