#include "ecu2mqtt/app/recorder.hpp"
#include "ecu2mqtt/store/raw_store.hpp"
#include "support/mosquitto_broker.hpp"

#include <catch2/catch.hpp>

using namespace ecu2mqtt;

namespace {

std::size_t files_in(const std::filesystem::path& dir) {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir))
        ++n;
    return n;
}

nlohmann::json line(const std::string& bytes) {
    return recording_line("2024-06-21T12:00:00+00:00", 8995, "192.0.2.1:4000", bytes, std::nullopt);
}

} // namespace

TEST_CASE("kept raw messages are bounded in count and bytes, the oldest go first") {
    const auto dir = test::make_temp_dir("ecu2mqtt-raw") / "raw";
    {
        RawMessageStore store(dir, 3, 1 << 20);
        for (int i = 0; i < 5; ++i) {
            const auto kept = store.keep(line("APS18 message " + std::to_string(i)), "216000064136",
                                         "undecodable");
            REQUIRE(kept.error.empty());
            CHECK(std::filesystem::exists(kept.file));
        }
        CHECK(files_in(dir) == 3);
    }
    // A new store picks up where the last one was: numbering goes on, the bound holds.
    RawMessageStore again(dir, 3, 1 << 20);
    CHECK(again.size() == 3);
    const auto kept = again.keep(line(std::string("\x01\xff binary", 9)), "../../etc", "odd");
    REQUIRE(kept.error.empty());
    CHECK(kept.file.parent_path() == dir); // the id never leaves the directory
    CHECK(kept.file.filename().string().starts_with("000000000006-"));
    CHECK(files_in(dir) == 3);
    const auto record = nlohmann::json::parse(std::ifstream(kept.file));
    CHECK(parse_recording_line(record.dump()).message == std::string("\x01\xff binary", 9));
    CHECK(record["why"] == "odd");

    RawMessageStore tiny(dir.parent_path() / "tiny", 100, 600);
    for (int i = 0; i < 10; ++i)
        tiny.keep(line(std::string(200, 'A')), "216000064136", "undecodable");
    std::uintmax_t bytes = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir.parent_path() / "tiny"))
        bytes += entry.file_size();
    CHECK(bytes <= 600);
    std::filesystem::remove_all(dir.parent_path());
}
