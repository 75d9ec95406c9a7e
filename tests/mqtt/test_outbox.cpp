#include "ecu2mqtt/mqtt/outbox.hpp"

#include <catch2/catch.hpp>
#include <random>
#include <set>

using namespace ecu2mqtt;

namespace {

std::vector<OutgoingMessage> reading(int n, int messages) {
    std::vector<OutgoingMessage> out;
    for (int i = 0; i < messages; ++i)
        out.push_back({"r/" + std::to_string(i), std::to_string(n), true});
    return out;
}

std::vector<Outbox::Send> drain(Outbox& box) {
    std::vector<Outbox::Send> sends;
    while (auto s = box.next())
        sends.push_back(*s);
    return sends;
}

} // namespace

TEST_CASE("the window bounds what is in flight, and acknowledgements let more out") {
    Outbox box(4);
    for (int n = 1; n <= 3; ++n)
        box.put_reading(n, reading(n, 3));
    auto first = drain(box);
    REQUIRE(first.size() == 4);
    CHECK(box.in_flight() == 4);
    CHECK(box.acknowledged(first[0].id).empty());
    CHECK(box.acknowledged(first[1].id).empty());
    CHECK(box.acknowledged(first[2].id) == std::vector<std::uint64_t>{1});
    auto second = drain(box);
    CHECK(second.size() == 3);
    CHECK(box.in_flight() == 4);
}

TEST_CASE("latest values go before readings, and a newer payload replaces a pending one") {
    Outbox box(10);
    box.put_reading(1, reading(1, 1));
    box.put_latest({"disc/a", "v1", true});
    box.put_latest({"disc/a", "v2", true});
    const auto sends = drain(box);
    REQUIRE(sends.size() == 2);
    CHECK(sends[0].message->topic == "disc/a");
    CHECK(sends[0].message->payload == "v2");
    CHECK(sends[1].message->topic == "r/0");
}

TEST_CASE("a newer version of a topic waits until the older one is acknowledged") {
    Outbox box(10);
    box.put_latest({"avail", "online", true});
    const auto first = drain(box);
    REQUIRE(first.size() == 1);
    box.put_latest({"avail", "offline", true});
    CHECK(drain(box).empty()); // never two versions of one topic in flight
    box.acknowledged(first[0].id);
    const auto second = drain(box);
    REQUIRE(second.size() == 1);
    CHECK(second[0].message->payload == "offline");
}

TEST_CASE("a refused message is sent again before anything after it") {
    Outbox box(2);
    box.put_reading(1, reading(1, 3));
    auto sends = drain(box);
    REQUIRE(sends.size() == 2);
    box.refused(sends[0].id);
    const auto again = drain(box);
    REQUIRE(again.size() == 1);
    CHECK(again[0].message->topic == "r/0");
}

TEST_CASE("a reconnect sends everything unacknowledged again, in order, latest values too") {
    Outbox box(3);
    box.put_latest({"bridge", "online", true});
    box.put_reading(1, reading(1, 2));
    box.put_reading(2, reading(2, 2));
    auto sends = drain(box);
    REQUIRE(sends.size() == 3);
    box.acknowledged(sends[0].id); // bridge
    box.acknowledged(sends[1].id); // reading 1, message 0
    box.connection_reset();
    CHECK(box.in_flight() == 0);
    CHECK(box.acknowledged(sends[2].id).empty()); // a late report from the old connection
    const auto after = drain(box);
    REQUIRE(after.size() == 3);
    CHECK(after[0].message->topic == "bridge");
    CHECK(after[1].message->topic == "r/1");
    CHECK(after[1].message->payload == "1");
    CHECK(after[2].message->topic == "r/0");
    CHECK(after[2].message->payload == "2");
}

TEST_CASE("a clear is forgotten once acknowledged and not sent again after a reconnect") {
    Outbox box(4);
    box.put_latest({"old/config", "", true}, false);
    const auto sends = drain(box);
    REQUIRE(sends.size() == 1);
    box.acknowledged(sends[0].id);
    CHECK_FALSE(box.has_latest("old/config"));
    box.connection_reset();
    CHECK(drain(box).empty());
}

TEST_CASE("under random refusals and reconnects every reading completes once, in order") {
    std::mt19937 random(20261125);
    for (int round = 0; round < 50; ++round) {
        Outbox box(1 + random() % 8);
        const int readings = 1 + static_cast<int>(random() % 40);
        for (int n = 1; n <= readings; ++n)
            box.put_reading(n, reading(n, 1 + static_cast<int>(random() % 6)));
        std::vector<std::uint64_t> completed;
        std::vector<Outbox::Send> flying;
        for (int step = 0; step < 100000 && completed.size() < std::size_t(readings); ++step) {
            for (auto s : drain(box))
                flying.push_back(s);
            REQUIRE(box.in_flight() <= box.window());
            if (flying.empty())
                continue;
            const auto pick = random() % flying.size();
            const auto send = flying[pick];
            flying.erase(flying.begin() + static_cast<std::ptrdiff_t>(pick));
            switch (random() % 10) {
            case 0:
                box.refused(send.id);
                break;
            case 1:
                box.connection_reset();
                flying.clear();
                break;
            default:
                for (auto done : box.acknowledged(send.id))
                    completed.push_back(done);
            }
        }
        REQUIRE(completed.size() == std::size_t(readings));
        for (int n = 1; n <= readings; ++n)
            CHECK(completed[n - 1] == std::uint64_t(n));
        CHECK(box.pending_readings() == 0);
    }
}
