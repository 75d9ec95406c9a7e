#include "ecu2mqtt/app/recorder.hpp"
#include "support/fixed_clock.hpp"
#include "support/mosquitto_broker.hpp"

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

using namespace ecu2mqtt;

namespace test_recorder {
namespace {

std::uintmax_t recordings_size(const std::filesystem::path& dir) {
    std::uintmax_t total = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir))
        total += entry.file_size();
    return total;
}

} // namespace

TEST_CASE("recordings stay under their size limit: the oldest days go first") {
    const auto dir = test::make_temp_dir("ecu2mqtt-rec");
    for (const char* day : {"2024-06-01", "2024-06-02", "2024-06-03"})
        std::ofstream(dir / ("ecu2mqtt-" + std::string(day) + ".jsonl")) << std::string(400, 'x');
    std::ofstream(dir / "notes.txt") << "not ours";
    test::FixedClock clock({2024, 6, 4, 12, 0, 0});
    std::stringstream log_text;
    Logger log(log_text, LogLevel::Info);
    FileRecorder recorder(dir, clock, log, 1000);
    const std::string bytes(100, 'A'); // the message only views its bytes
    const InboundMessage message(bytes, 8995, "192.0.2.1:5000");
    recorder.record(message, std::string("10120240604115500"));

    CHECK_FALSE(std::filesystem::exists(dir / "ecu2mqtt-2024-06-01.jsonl"));
    CHECK(std::filesystem::exists(dir / "ecu2mqtt-2024-06-03.jsonl")); // the newest old day
    CHECK(std::filesystem::exists(dir / "ecu2mqtt-2024-06-04.jsonl"));
    CHECK(std::filesystem::exists(dir / "notes.txt")); // not a recording: left alone
    CHECK(log_text.str().find("event=recording_removed") != std::string::npos);

    SECTION("a day that alone reaches the limit pauses recording, logged once") {
        for (int i = 0; i < 20; ++i)
            recorder.record(message, std::nullopt);
        CHECK_FALSE(std::filesystem::exists(dir / "ecu2mqtt-2024-06-02.jsonl"));
        CHECK_FALSE(std::filesystem::exists(dir / "ecu2mqtt-2024-06-03.jsonl"));
        CHECK(recordings_size(dir) - std::filesystem::file_size(dir / "notes.txt") <= 1000);
        const auto text = log_text.str();
        const auto first = text.find("event=recording_paused");
        REQUIRE(first != std::string::npos);
        CHECK(text.find("event=recording_paused", first + 1) == std::string::npos);

        clock.set({2024, 6, 5, 0, 0, 1}); // a new day records again, in room made for it
        recorder.record(message, std::nullopt);
        std::ifstream today(dir / "ecu2mqtt-2024-06-05.jsonl");
        std::string line;
        REQUIRE(std::getline(today, line));
        CHECK(parse_recording_line(line).message == bytes);
    }
    std::filesystem::remove_all(dir);
}

} // namespace test_recorder
