#include "ecu2mqtt/protocol/framing.hpp"
#include "support/test_paths.hpp"
#include "support/upload_builder.hpp"

#include <catch2/catch.hpp>

using namespace ecu2mqtt;

namespace test_framing {
namespace {

std::vector<std::string> frames_of(MessageFramer& framer) {
    std::vector<std::string> out;
    for (;;) {
        Frame f = framer.next();
        if (f.status != Frame::Status::Message)
            break;
        out.push_back(f.message);
    }
    return out;
}

} // namespace

TEST_CASE("a message fed one byte at a time is framed once, when complete") {
    const std::string msg = test::captured_upload();
    MessageFramer framer(64 * 1024);
    std::vector<std::string> got;
    for (std::size_t i = 0; i < msg.size(); ++i) {
        framer.append(msg.substr(i, 1));
        auto frames = frames_of(framer);
        if (i + 1 < msg.size())
            REQUIRE(frames.empty());
        got.insert(got.end(), frames.begin(), frames.end());
    }
    REQUIRE(got.size() == 1);
    CHECK(got[0] == msg);
    CHECK(framer.buffered() == 0);
}

TEST_CASE("several messages in one read are split by their length fields") {
    const std::string a = test::captured_upload();
    test::UploadSpec night;
    const std::string b = test::build_upload(night);
    MessageFramer framer(64 * 1024);
    framer.append(a + b + a.substr(0, 50));
    const auto frames = frames_of(framer);
    REQUIRE(frames.size() == 2);
    CHECK(frames[0] == a);
    CHECK(frames[1] == b);
    CHECK(framer.buffered() == 50);
}

TEST_CASE("a message over 999 bytes uses the 5-character length") {
    test::UploadSpec spec;
    for (int i = 0; i < 12; ++i)
        spec.inverters.push_back(
            test::inverter_with("80600000000" + std::to_string(i % 10), 4, 50));
    const std::string big = test::build_upload(spec);
    REQUIRE(big.size() > 1500);
    MessageFramer framer(64 * 1024);
    framer.append(big.substr(0, 1024)); // what a peer's single read would have seen
    CHECK(framer.next().status == Frame::Status::NeedMore);
    framer.append(big.substr(1024));
    const auto frame = framer.next();
    REQUIRE(frame.status == Frame::Status::Message);
    CHECK(frame.message == big);
}

TEST_CASE("a length field over the limit is refused at once") {
    MessageFramer framer(1000);
    framer.append("APS18A5000AAAAAAA1");
    const auto frame = framer.next();
    CHECK(frame.status == Frame::Status::TooLarge);
    CHECK_THAT(frame.reason, Catch::Contains("5001"));
}

TEST_CASE("bytes without a message end are refused past the limit") {
    MessageFramer framer(1000);
    framer.append(std::string(999, 'x'));
    CHECK(framer.next().status == Frame::Status::NeedMore);
    framer.append("yy");
    CHECK(framer.next().status == Frame::Status::TooLarge);
}

TEST_CASE("a length field that lies short or long still frames at the trailer") {
    const std::string msg = test::captured_upload();
    SECTION("claims more than sent") {
        std::string lying = msg;
        lying.replace(5, 5, "AA400");
        MessageFramer framer(64 * 1024);
        framer.append(lying);
        const auto frame = framer.next();
        REQUIRE(frame.status == Frame::Status::Message);
        CHECK(frame.message == lying);
    }
    SECTION("claims less than sent") {
        std::string lying = msg;
        lying.replace(5, 5, "AA100");
        MessageFramer framer(64 * 1024);
        framer.append(lying);
        const auto frame = framer.next();
        REQUIRE(frame.status == Frame::Status::Message);
        CHECK(frame.message.size() == 101);
    }
}

TEST_CASE("ECU11 control messages are framed by their 4-digit total length") {
    const std::string poll = "ECU1100320004216000064136"
                             "0003END";
    MessageFramer framer(1024);
    framer.append(poll + "\n" + poll.substr(0, 10));
    const auto frames = frames_of(framer);
    REQUIRE(frames.size() == 1);
    CHECK(frames[0] == poll);
    CHECK(framer.buffered() == 10); // the line break between messages was skipped
}

TEST_CASE("unknown messages end at the next END line break") {
    MessageFramer framer(1024);
    framer.append("HELLO WORLD END\nrest");
    const auto frames = frames_of(framer);
    REQUIRE(frames.size() == 1);
    CHECK(frames[0] == "HELLO WORLD END\n");
    CHECK(framer.take_remainder() == "rest");
    CHECK(framer.buffered() == 0);
}

} // namespace test_framing
