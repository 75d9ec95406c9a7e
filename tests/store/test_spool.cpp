#include "ecu2mqtt/store/spool.hpp"
#include "support/mosquitto_broker.hpp"

#include <catch2/catch.hpp>
#include <fstream>

using namespace ecu2mqtt;

namespace {
nlohmann::json reading(int n) {
    return {{"n", n}, {"messages", nlohmann::json::array()}, {"pad", std::string(100, 'x')}};
}
} // namespace

TEST_CASE("the spool is a durable FIFO that survives a restart") {
    const auto dir = test::make_temp_dir("ecu2mqtt-spool");
    {
        Spool spool(dir / "spool", 1 << 20);
        REQUIRE(spool.open().empty());
        for (int n = 1; n <= 5; ++n)
            REQUIRE(spool.push(reading(n)).empty());
        CHECK(spool.size() == 5);
        const auto first = spool.front();
        REQUIRE(first);
        CHECK(first->reading["n"] == 1);
        spool.pop(first->sequence);
        spool.pop(first->sequence); // popping twice is harmless
        CHECK(spool.size() == 4);
    }
    Spool reopened(dir / "spool", 1 << 20);
    REQUIRE(reopened.open().empty());
    CHECK(reopened.size() == 4);
    for (int n = 2; n <= 5; ++n) {
        const auto entry = reopened.front();
        REQUIRE(entry);
        CHECK(entry->reading["n"] == n);
        reopened.pop(entry->sequence);
    }
    CHECK_FALSE(reopened.front());
    REQUIRE(reopened.push(reading(6)).empty()); // numbering continues after a restart
    CHECK(reopened.front()->reading["n"] == 6);
    std::filesystem::remove_all(dir);
}

TEST_CASE("past its size cap the spool drops the oldest readings and counts them") {
    const auto dir = test::make_temp_dir("ecu2mqtt-spool");
    Spool spool(dir / "spool", 1000); // room for about six 150-byte readings
    REQUIRE(spool.open().empty());
    for (int n = 1; n <= 20; ++n)
        REQUIRE(spool.push(reading(n)).empty());
    CHECK(spool.bytes() <= 1000);
    CHECK(spool.dropped() == 20 - spool.size());
    CHECK(spool.dropped() >= 10);
    CHECK(spool.front()->reading["n"] == 20 - static_cast<int>(spool.size()) + 1);
    std::filesystem::remove_all(dir);
}

TEST_CASE("a corrupt spool entry is set aside and the next one is delivered") {
    const auto dir = test::make_temp_dir("ecu2mqtt-spool");
    Spool spool(dir / "spool", 1 << 20);
    REQUIRE(spool.open().empty());
    REQUIRE(spool.push(reading(1)).empty());
    REQUIRE(spool.push(reading(2)).empty());
    std::ofstream(dir / "spool" / "00000000000000000001.json", std::ios::trunc)
        << "{\"n\": 1, \"mess";
    std::string problem;
    const auto entry = spool.front(&problem);
    REQUIRE(entry);
    CHECK(entry->reading["n"] == 2);
    CHECK_THAT(problem, Catch::Contains("set aside"));
    CHECK(std::filesystem::exists(dir / "spool" / "00000000000000000001.json.corrupt"));
    std::filesystem::remove_all(dir);
}

TEST_CASE("a spool that cannot be written says so instead of pretending") {
    const auto dir = test::make_temp_dir("ecu2mqtt-spool");
    std::ofstream(dir / "spool") << "a file where the directory should be";
    Spool spool(dir / "spool", 1 << 20);
    CHECK_FALSE(spool.open().empty());
    CHECK_FALSE(spool.push(reading(1)).empty());
    CHECK(spool.size() == 0);
    std::filesystem::remove_all(dir);
}
