#include "ecu2mqtt/mqtt/outbox.hpp"

#include <catch2/catch.hpp>
#include <deque>
#include <map>
#include <random>
#include <set>

using namespace ecu2mqtt;

namespace test_outbox {
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

// Sends all that can go and has the broker acknowledge each.
void deliver_all(Outbox& box) {
    for (const auto& send : drain(box))
        box.acknowledged(send.id);
}

// The payload sent last on each topic.
std::map<std::string, std::string> by_topic(const std::vector<Outbox::Send>& sends) {
    std::map<std::string, std::string> last;
    for (const auto& send : sends)
        last[send.message->topic] = send.message->payload;
    return last;
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

TEST_CASE("a broker that lost its retained messages gets the newest acknowledged of each back "
          "before any waiting reading") {
    Outbox box(8);
    box.put_reading(1, {{"ecu/state", "1", true},
                        {"inv/a", "1", true},
                        {"inv/b", "1", true},
                        {"history", "1", false}});
    box.put_reading(2, {{"ecu/state", "2", true}});
    deliver_all(box);
    box.put_reading(3, {{"ecu/state", "3", true}, {"inv/a", "3", true}});

    box.connection_reset();
    box.hold_readings(true); // while asking the broker whether it kept them
    CHECK(drain(box).empty());
    // Not the history message (not retained), and not what the waiting reading names: its
    // newer value follows, and going back to an older one first would make subscribers see the
    // state step back.
    CHECK(box.restore_delivered() == 1);
    box.hold_readings(false);
    auto restored = drain(box);
    REQUIRE(restored.size() == 1); // the waiting reading stays back until it is acknowledged
    CHECK(restored[0].message->topic == "inv/b");
    CHECK(restored[0].message->payload == "1");
    CHECK(drain(box).empty());
    box.acknowledged(restored[0].id);
    const auto reading = drain(box);
    REQUIRE(reading.size() == 2);
    CHECK(reading[0].message->payload == "3");

    // Given back once: a later reconnect to a broker that kept them sends nothing old again.
    for (const auto& send : reading)
        box.acknowledged(send.id);
    box.connection_reset();
    CHECK(drain(box).empty());
}

TEST_CASE("a cleared topic is not given back after the broker lost its retained messages") {
    Outbox box(8);
    box.put_reading(1, {{"inv/a", "1", true}, {"inv/b", "1", true}});
    deliver_all(box);
    box.put_latest({"inv/b", "", true}, false); // the inverter was forgotten
    deliver_all(box);
    box.connection_reset();
    CHECK(box.restore_delivered() == 1);
    const auto sends = drain(box);
    REQUIRE(sends.size() == 1);
    CHECK(sends[0].message->topic == "inv/a");
}

TEST_CASE("readings the broker's receipt names complete without going out again") {
    Outbox box(8);
    box.put_reading(1, {{"ecu/state", "1", true}, {"receipt", "1", true}});
    box.put_reading(2, {{"ecu/state", "2", true}, {"receipt", "2", true}});
    box.put_reading(3, {{"ecu/state", "3", true}, {"receipt", "3", true}});
    const auto sent = drain(box);
    REQUIRE(sent.size() == 6);
    box.acknowledged(sent[0].id); // the connection drops with the rest unacknowledged
    box.connection_reset();
    CHECK(box.complete_up_to(2) == std::vector<std::uint64_t>{1, 2});
    const auto again = drain(box);
    REQUIRE(again.size() == 2);
    CHECK(again[0].message->payload == "3");
    // What the broker has by the receipt can be given back after a later restart.
    for (const auto& send : again)
        box.acknowledged(send.id);
    box.connection_reset();
    box.restore_delivered();
    const auto given_back = by_topic(drain(box));
    CHECK(given_back == std::map<std::string, std::string>{{"ecu/state", "3"}, {"receipt", "3"}});
}

TEST_CASE("a receipt cannot complete readings that never went out, whatever it names") {
    Outbox box(2);
    box.put_reading(1, {{"ecu/state", "1", true}, {"receipt", "1", true}});
    box.put_reading(2, {{"ecu/state", "2", true}, {"receipt", "2", true}});
    box.put_reading(3, {{"ecu/state", "3", true}, {"receipt", "3", true}});
    REQUIRE(drain(box).size() == 2); // reading 1 on the wire, then the connection goes
    box.connection_reset();
    // A receipt planted by another client names reading 3: only reading 1 can be there.
    CHECK(box.complete_up_to(3) == std::vector<std::uint64_t>{1});
    CHECK(box.pending_readings() == 2);
}

TEST_CASE("a cleared topic stays cleared: older readings' messages of it are left out, and it "
          "is not given back") {
    Outbox box(8);
    // Reading 1 is on the wire when the inverter is forgotten: the clear lands after it.
    box.put_reading(1, {{"inv/a", "1", true}, {"inv/b", "1", true}, {"receipt", "1", true}});
    const auto first = drain(box);
    REQUIRE(first.size() == 3);
    // Reading 2, kept before the clear, still waits: its inv/b is older than the clear.
    box.put_reading(2, {{"inv/a", "2", true}, {"inv/b", "2", true}, {"receipt", "2", true}});
    box.clear_topic("inv/b", 2);
    // Reading 3, kept after the inverter came back: its inv/b goes out.
    box.put_reading(3, {{"inv/b", "3", true}, {"receipt", "3", true}});
    std::vector<std::string> wire;
    for (const auto& send : drain(box))
        wire.push_back(send.message->topic + "=" + send.message->payload);
    for (const auto& send : first)
        box.acknowledged(send.id);
    CHECK(wire ==
          std::vector<std::string>{"inv/b=", "inv/a=2", "receipt=2", "inv/b=3", "receipt=3"});
    CHECK_FALSE(box.delivered_sequence("inv/b")); // acknowledged before the clear: not kept

    box.connection_reset(); // a broker restarted without persistence
    box.hold_readings(true);
    box.restore_delivered();
    const auto given_back = by_topic(drain(box));
    // The clear again; inv/a and the receipt come with reading 2, which waits.
    CHECK(given_back == std::map<std::string, std::string>{{"inv/b", ""}});
}

TEST_CASE("what is given back goes in the readings' order, the receipt after every state") {
    Outbox box(256);
    std::vector<OutgoingMessage> messages;
    for (int ecu = 0; ecu < 4; ++ecu) {
        const std::string base = "ecu2mqtt/21600006413" + std::to_string(ecu);
        for (int i = 0; i < 25; ++i)
            messages.push_back(
                {base + "/8060000112" + std::to_string(10 + i) + "/state", "1", true});
        messages.push_back({base + "/state", "1", true});
    }
    messages.push_back({"ecu2mqtt/bridge/delivered", "1", true});
    box.put_reading(1, messages);
    deliver_all(box);
    box.connection_reset();
    REQUIRE(box.restore_delivered() == messages.size());
    const auto sends = drain(box);
    REQUIRE(sends.size() == messages.size());
    for (std::size_t i = 0; i < sends.size(); ++i)
        CHECK(sends[i].message->topic == messages[i].topic);
}

TEST_CASE("a restore cut short by the connection waits for the next verdict, then goes again "
          "in full") {
    Outbox box(8);
    box.put_reading(1, {{"inv/a", "1", true}, {"receipt", "1", true}});
    deliver_all(box);
    box.connection_reset();
    box.restore_delivered();
    const auto restored = drain(box);
    REQUIRE(restored.size() == 2);
    box.acknowledged(restored[0].id); // inv/a is back; the receipt's acknowledgement is lost
    box.connection_reset();
    CHECK(drain(box).empty()); // nothing given back before the broker is asked again
    CHECK(box.restoring() == 1);
    CHECK(box.restore_delivered() == 2); // the broker may have lost inv/a again meanwhile
    const auto again = drain(box);
    REQUIRE(again.size() == 2);
    CHECK(again[0].message->topic == "inv/a");
    CHECK(again[1].message->topic == "receipt");
}

// A broker in miniature: messages reach it in the order sent on a connection, a reset loses
// what was still on the way, and a restart without persistence forgets every retained value.
// Acknowledgements on the way are lost with a connection. After each reconnect the publisher's
// check runs: readings wait; when the broker lacks the receipt (the last message of every
// reading), the delivered states are given back, and when it has one, the readings it names
// complete without going out again.
TEST_CASE("under random broker restarts, lost acknowledgements and clears no retained topic goes "
          "back, and each ends newest or cleared") {
    std::mt19937 random(20261126);
    for (int round = 0; round < 1000; ++round) {
        Outbox box(1 + random() % 8);
        const int readings = 1 + static_cast<int>(random() % 30);
        std::map<std::string, std::vector<int>> naming;   // topic -> the readings that name it
        std::vector<std::vector<OutgoingMessage>> to_put; // kept one by one, as uploads come
        for (int n = 1; n <= readings; ++n) {
            std::vector<OutgoingMessage> messages;
            for (int topic = 0; topic < 5; ++topic)
                if (random() % 3 != 0) {
                    messages.push_back({"t/" + std::to_string(topic), std::to_string(n), true});
                    naming["t/" + std::to_string(topic)].push_back(n);
                }
            messages.push_back({"history", std::to_string(n), false});
            messages.push_back({"receipt", std::to_string(n), true});
            naming["receipt"].push_back(n);
            to_put.push_back(std::move(messages));
        }
        int put = 0;
        const auto keep_next = [&] {
            if (put < readings) {
                box.put_reading(std::uint64_t(put + 1), std::move(to_put[std::size_t(put)]));
                ++put;
            }
        };
        keep_next();
        std::map<std::string, int> cleared; // topic -> the readings its clear left out, up to

        std::map<std::string, int> broker;
        struct OnTheWay {
            std::uint64_t id;
            OutgoingMessage message;
        };
        std::deque<OnTheWay> wire;
        std::deque<std::uint64_t> acks;
        std::size_t completed = 0;
        bool checking = false;
        std::optional<int> broker_receipt; // as the check's subscription finds it
        const auto reconnect = [&] {       // what was on the way and unacknowledged is lost
            wire.clear();
            acks.clear();
            box.connection_reset();
            checking = box.delivered_topics() > 0 || box.pending_readings() > 0;
            box.hold_readings(checking);
            // The broker takes the subscription before anything published on this connection.
            broker_receipt.reset();
            if (broker.contains("receipt"))
                broker_receipt = broker["receipt"];
        };
        const auto finish_check = [&] {
            const auto acknowledged = box.delivered_sequence("receipt");
            // A restore cut short by the connection is done again in full.
            const bool current = broker_receipt && box.restoring() == 0 &&
                                 (!acknowledged || std::uint64_t(*broker_receipt) >= *acknowledged);
            if (current)
                completed += box.complete_up_to(std::uint64_t(*broker_receipt)).size();
            else
                box.restore_delivered();
            box.hold_readings(false);
            checking = false;
        };
        const auto broker_takes_one = [&] {
            auto next = std::move(wire.front());
            wire.pop_front();
            if (next.message.retain && next.message.payload.empty()) {
                broker.erase(next.message.topic);
            } else if (next.message.retain) {
                const int value = std::stoi(next.message.payload);
                if (broker.contains(next.message.topic))
                    REQUIRE(value >= broker[next.message.topic]);
                broker[next.message.topic] = value;
            }
            acks.push_back(next.id);
        };
        for (int step = 0; step < 20000 && completed < std::size_t(readings); ++step) {
            while (const auto send = box.next())
                wire.push_back({send->id, *send->message});
            const auto roll = random() % 40;
            if (roll == 0) {
                reconnect();
            } else if (roll == 1) {
                broker.clear(); // restarted without persistence
                reconnect();
            } else if (roll < 10) {
                if (checking)
                    finish_check();
            } else if (roll == 11) {
                // An inverter is forgotten: its state is cleared, with the readings so far, and
                // mostly it is gone for good (a replaced inverter).
                const auto topic = "t/" + std::to_string(random() % 5);
                cleared[topic] = put;
                box.clear_topic(topic, std::uint64_t(put));
                if (random() % 4 != 0) {
                    for (auto n = std::size_t(put); n < to_put.size(); ++n)
                        std::erase_if(to_put[n], [&](const auto& m) { return m.topic == topic; });
                    std::erase_if(naming[topic], [&](int n) { return n > put; });
                }
            } else if (roll >= 12 && roll < 16) {
                keep_next();
            } else if (roll == 10) {
                // The client refuses the newest publish (its buffer is full): it never left.
                if (!wire.empty()) {
                    box.refused(wire.back().id);
                    wire.pop_back();
                }
            } else if (roll < 25) {
                if (!acks.empty()) {
                    completed += box.acknowledged(acks.front()).size();
                    acks.pop_front();
                }
            } else if (!wire.empty()) {
                broker_takes_one();
            }
        }
        REQUIRE(completed == std::size_t(readings));
        const auto settle = [&] {
            if (checking)
                finish_check();
            for (int quiet = 0; quiet < 10000; ++quiet) {
                while (const auto send = box.next())
                    wire.push_back({send->id, *send->message});
                if (wire.empty() && acks.empty())
                    break;
                if (!wire.empty())
                    broker_takes_one();
                while (!acks.empty()) {
                    box.acknowledged(acks.front());
                    acks.pop_front();
                }
            }
        };
        std::map<std::string, int> newest; // what each topic must finally hold
        for (const auto& [topic, ns] : naming)
            if (!ns.empty() && ns.back() > cleared[topic])
                newest[topic] = ns.back();
        settle();
        CHECK(broker == newest);
        // One last restart of the broker, then quiet: everything comes back, nothing cleared.
        broker.clear();
        reconnect();
        settle();
        CHECK(broker == newest);
        CHECK(box.restoring() == 0);
    }
}

} // namespace test_outbox
