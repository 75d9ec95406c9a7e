// Crashes and power cuts against the durable store, with the real binary and a real Mosquitto:
// whatever the ECU was answered for reaches a subscriber exactly once. Tagged [crash] (CTest
// label "crash").
#include "support/mqtt_probe.hpp"
#include "support/service_process.hpp"
#include "support/store_probe.hpp"
#include "support/test_paths.hpp"
#include "support/upload_builder.hpp"
#include "support/wal_file.hpp"

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>

using namespace std::chrono_literals;
using nlohmann::json;

namespace test_crash {
namespace {

constexpr int kInvertersPerEcu = 3;

struct Scratch {
    Scratch() : state(test::make_temp_dir("ecu2mqtt-crash") / "state") {}
    ~Scratch() {
        std::error_code ec;
        std::filesystem::remove_all(state.parent_path(), ec);
    }
    std::filesystem::path state;
};

std::string ecu_id(int ecu) {
    return "2160002" + test::zero_padded(ecu, 5);
}
std::string inverter_uid(int ecu, int n) {
    return "806" + test::zero_padded(ecu, 4) + test::zero_padded(n, 5);
}

std::string formatted(std::time_t t, const char* format) {
    std::tm parts{};
    ::gmtime_r(&t, &parts);
    char text[32];
    std::strftime(text, sizeof text, format, &parts);
    return text;
}

std::string iso(std::time_t t) {
    return formatted(t, "%Y-%m-%dT%H:%M:%S");
}

// ECU clocks are the host's (services run with TZ=UTC). Readings are stamped one second apart
// from two hours ago, or from midnight in the day's first two hours: a run of fewer readings
// than that does not pass the host's time by much, and no ECU midnight falls inside it.
std::time_t first_stamp() {
    const std::time_t now = std::time(nullptr);
    return std::max(now - 2 * 3600, now - now % 86400);
}

// Reading `k` of an ECU with a few QS1, stamped `t`; its lifetime counter rises with k.
std::string ecu_upload(int ecu, int k, std::time_t t) {
    test::UploadSpec spec;
    spec.ecu_id = ecu_id(ecu);
    spec.timestamp = formatted(t, "%Y%m%d%H%M%S");
    const int watts = 100 + k % 200;
    for (int i = 0; i < kInvertersPerEcu; ++i)
        spec.inverters.push_back(test::inverter_with(inverter_uid(ecu, i), 4, watts));
    spec.centiwatts = kInvertersPerEcu * 4 * watts * 100LL;
    spec.decikwh = 50000 + k;
    return test::build_upload(spec);
}

// The fake EMA's answer to an upload stamped `t` once it is kept: its time minus five minutes.
std::string reply_to(std::time_t t) {
    return "101" + formatted(t - 300, "%Y%m%d%H%M%S");
}

std::string state_topic(int ecu) {
    return "ecu2mqtt/" + ecu_id(ecu) + "/state";
}
std::string history_topic(int ecu) {
    return "ecu2mqtt/" + ecu_id(ecu) + "/history";
}
std::string inverter_topic(int ecu, int n) {
    return "ecu2mqtt/" + ecu_id(ecu) + "/" + inverter_uid(ecu, n) + "/state";
}

// The `key` of each message on `topic`, in arrival order. The probe never reconnects, so
// every copy it got is one the service published.
std::vector<json> values_on(const std::vector<test::Received>& messages, const std::string& topic,
                            const std::string& key) {
    std::vector<json> values;
    for (const auto& m : messages)
        if (m.topic == topic && !m.payload.empty())
            values.push_back(json::parse(m.payload).at(key));
    return values;
}

std::vector<std::string> stamps_on(const std::vector<test::Received>& messages,
                                   const std::string& topic) {
    std::vector<std::string> stamps;
    for (const auto& value : values_on(messages, topic, "timestamp"))
        stamps.push_back(value.get<std::string>());
    return stamps;
}

bool strictly_increasing(const std::vector<std::string>& stamps) {
    return std::adjacent_find(stamps.begin(), stamps.end(), std::greater_equal<>()) == stamps.end();
}

// Waits until the broker has every reading the database ever kept: the service's receipt names
// the newest. The probe gets the service's messages in the order they were published, so each
// reading's messages came before it.
bool everything_delivered(test::MqttProbe& probe, const std::filesystem::path& state,
                          std::chrono::milliseconds timeout) {
    const auto id = test::query_rows(state, "SELECT value FROM meta WHERE key = 'database_id'", 1);
    const auto newest = test::query_number(
        state, "SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'pending_readings'");
    if (id.empty() || newest == 0)
        return newest == 0;
    const json receipt{{"database", id[0][0]}, {"sequence", newest}};
    return probe
        .wait_for_payload(
            "ecu2mqtt/bridge/delivered",
            [&](const std::string& p) { return json::parse(p, nullptr, false) == receipt; },
            timeout)
        .has_value();
}

// What one ECU did: readings answered, and readings given up on after an attempt that reached
// the service and got no whole answer (kept or not, nobody knows).
struct EcuRecord {
    std::vector<std::string> answered;
    std::vector<std::string> given_up;
    std::vector<std::string> wrong_replies;
    int unanswered_attempts = 0;
};

struct Attempt {
    bool reached = false; // connected and the whole message sent
    std::string reply;
};

Attempt try_upload(std::uint16_t port, const std::string& message) {
    try {
        test::TcpClient client(port, 20s);
        client.send(message);
        return {true, client.receive(17)};
    } catch (const std::runtime_error&) {
        return {};
    }
}

// ECUs uploading in a tight loop, each on its own thread, to whichever service runs now.
class Fleet {
  public:
    Fleet(int ecus, std::uint64_t seed, std::time_t first) : records_(ecus) {
        for (int e = 0; e < ecus; ++e)
            threads_.emplace_back([this, e, seed, first] {
                run(e, seed + 1 + e, first);
                --running_;
            });
    }
    ~Fleet() { finish(); }

    void point_at(std::uint16_t port) { port_ = port; }
    // The current readings are sent until answered or given up, for at most `patience`; then
    // the ECUs stop.
    const std::vector<EcuRecord>& finish(std::chrono::milliseconds patience = 0ms) {
        stop_ = true;
        const auto deadline = std::chrono::steady_clock::now() + patience;
        while (running_ > 0 && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(10ms);
        stopped_in_time_ = running_ == 0;
        abandon_ = true;
        for (auto& t : threads_)
            if (t.joinable())
                t.join();
        return records_;
    }
    bool stopped_in_time() const { return stopped_in_time_; }

  private:
    void run(int ecu, std::uint64_t seed, std::time_t first) {
        std::mt19937_64 random(seed);
        EcuRecord& record = records_[ecu];
        for (int k = 0; !stop_; ++k) {
            const std::time_t t = first + k;
            const std::string message = ecu_upload(ecu, k, t);
            while (!abandon_) {
                const std::uint16_t port = port_;
                const Attempt attempt = port ? try_upload(port, message) : Attempt{};
                if (attempt.reply == reply_to(t)) {
                    record.answered.push_back(iso(t));
                    // A burst, but one the publisher drains as it goes: a tight loop would
                    // queue tens of thousands of readings and test the drain's speed instead.
                    std::this_thread::sleep_for(20ms);
                    break;
                }
                if (!attempt.reply.empty())
                    record.wrong_replies.push_back(iso(t) + " answered " + attempt.reply);
                if (attempt.reached) {
                    ++record.unanswered_attempts;
                    // The ECU sends an unanswered reading again; half the time it moves on
                    // instead, so that readings kept but never answered are seen too.
                    if (random() % 2 == 0) {
                        record.given_up.push_back(iso(t));
                        break;
                    }
                }
                std::this_thread::sleep_for(1ms);
            }
        }
    }

    std::vector<EcuRecord> records_;
    std::vector<std::thread> threads_;
    std::atomic<std::uint16_t> port_{0};
    std::atomic<bool> stop_{false};
    std::atomic<bool> abandon_{false};
    std::atomic<int> running_{static_cast<int>(records_.size())};
    bool stopped_in_time_ = false;
};

// The messages from the first copy of reading `stamp` on `topic` to its second, one a line, the
// payloads cut short: where the second copy came from.
std::string between_copies(const std::vector<test::Received>& messages, const std::string& topic,
                           const std::string& stamp) {
    std::vector<std::size_t> copies;
    for (std::size_t i = 0; i < messages.size(); ++i)
        if (messages[i].topic == topic &&
            json::parse(messages[i].payload, nullptr, false).contains("timestamp") &&
            json::parse(messages[i].payload)["timestamp"] == stamp)
            copies.push_back(i);
    if (copies.size() < 2)
        return {};
    std::string lines;
    const std::size_t from = copies[0] >= 4 ? copies[0] - 4 : 0;
    for (std::size_t i = from; i <= copies[1] + 1 && i < messages.size(); ++i) {
        if (i > copies[0] + 30 && i + 30 < copies[1])
            continue;
        auto payload = messages[i].payload;
        if (const auto j = json::parse(payload, nullptr, false); j.contains("timestamp"))
            payload = j["timestamp"].get<std::string>();
        lines += messages[i].topic + " " + payload.substr(0, 60) + "\n";
    }
    return lines;
}

std::vector<std::string> lines_with(const std::string& text, const std::string& part) {
    std::vector<std::string> found;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);)
        if (line.find(part) != std::string::npos)
            found.push_back(line);
    return found;
}

std::uint64_t crash_seed() {
    if (const char* given = std::getenv("ECU2MQTT_CRASH_SEED"))
        return std::strtoull(given, nullptr, 10);
    return std::random_device()();
}

std::chrono::microseconds up_to(std::mt19937_64& random, std::chrono::milliseconds most) {
    return std::chrono::microseconds(random() % (std::chrono::microseconds(most).count() + 1));
}

// How each copy of each reading of one ECU arrived, against what the ECU was told.
struct Tally {
    std::vector<std::string> missing, twice, made_up, given_up_twice;
};

Tally tally(const EcuRecord& record, const std::vector<std::string>& published) {
    std::map<std::string, int> copies;
    for (const auto& t : published)
        ++copies[t];
    Tally result;
    const std::set<std::string> answered(record.answered.begin(), record.answered.end());
    const std::set<std::string> given_up(record.given_up.begin(), record.given_up.end());
    for (const auto& t : answered) {
        if (copies[t] == 0)
            result.missing.push_back(t);
        else if (copies[t] > 1)
            result.twice.push_back(t);
    }
    for (const auto& t : given_up)
        if (copies[t] > 1)
            result.given_up_twice.push_back(t);
    for (const auto& [t, n] : copies)
        if (!answered.contains(t) && !given_up.contains(t))
            result.made_up.push_back(t);
    return result;
}

std::string around_first_twice(const std::vector<test::Received>& messages,
                               const std::string& topic, const Tally& tally) {
    if (tally.twice.empty())
        return "nothing twice";
    return "what the subscriber got from the first copy of " + tally.twice[0] +
           " to the second:\n" + between_copies(messages, topic, tally.twice[0]);
}

void append_to(const std::filesystem::path& file, const std::string& bytes) {
    std::ofstream(file, std::ios::binary | std::ios::app) << bytes;
}

// A page SQLite would write next: some other content for the same page. Were it ever taken as
// committed, the database would be corrupt, and the integrity check would say so.
std::string changed(std::string page) {
    for (auto& byte : page)
        byte = static_cast<char>(byte ^ 0x5a);
    return page;
}

} // namespace

TEST_CASE("killed with SIGKILL at random points of an upload burst, 210 times: "
          "every answered reading is published once",
          "[crash]") {
    constexpr int kEcus = 4;
    constexpr int kKills = 210;
    // Where a kill lands: one in eight while the service starts (store opened, ports bound),
    // the others up to kAliveWindow after it is ready: before the broker connection, during the
    // audit of its receipt, while stored readings go out, between a reading and its receipt.
    constexpr auto kStartWindow = 80ms;
    constexpr auto kAliveWindow = 200ms;

    const std::uint64_t seed = crash_seed();
    WARN("seed " << seed << " (ECU2MQTT_CRASH_SEED=" << seed << " repeats the kill points)");
    INFO("seed " << seed);
    Scratch dir;
    test::MosquittoBroker broker({}, {}, /*persistent=*/true);
    test::MqttProbe probe(broker.url(), "ecu2mqtt/#"); // subscribed throughout, never restarted
    const auto started = std::chrono::steady_clock::now();
    Fleet fleet(kEcus, seed, first_stamp());
    std::mt19937_64 random(seed);
    std::vector<std::string> died_by_themselves, logged_errors;
    // A port picked free can be taken (by one of the ECUs' own connections) before the service
    // binds it; such a start does not count.
    const auto port_taken = [](const std::string& log) {
        return log.find("cannot listen on") != std::string::npos;
    };
    int kills = 0, ports_taken = 0;
    for (int start = 0; kills < kKills && start < 2 * kKills; ++start) {
        const bool during_start = random() % 8 == 0;
        std::unique_ptr<test::ServiceProcess> service;
        try {
            service = std::make_unique<test::ServiceProcess>(
                broker.url(), dir.state, std::vector<std::string>{}, !during_start);
        } catch (const std::runtime_error& e) {
            if (!port_taken(e.what()))
                throw;
            ++ports_taken;
            continue;
        }
        fleet.point_at(service->port());
        std::this_thread::sleep_for(up_to(random, during_start ? kStartWindow : kAliveWindow));
        fleet.point_at(0);
        if (service->process().running()) {
            service->process().signal(SIGKILL);
            REQUIRE(service->process().wait_for(10s));
            ++kills;
        } else if (port_taken(service->log())) {
            ++ports_taken;
            continue;
        } else {
            died_by_themselves.push_back(service->log());
        }
        for (auto& line : lines_with(service->log(), "level=error"))
            logged_errors.push_back(std::move(line));
    }
    REQUIRE(kills == kKills);

    std::unique_ptr<test::ServiceProcess> last;
    while (!last) {
        try {
            last = std::make_unique<test::ServiceProcess>(broker.url(), dir.state);
        } catch (const std::runtime_error& e) {
            if (!port_taken(e.what()) || ++ports_taken > kKills)
                throw;
        }
    }
    fleet.point_at(last->port());
    const auto& records = fleet.finish(60s);
    REQUIRE(fleet.stopped_in_time()); // the last service settled the ECUs' last readings
    const auto burst = std::chrono::steady_clock::now() - started;
    std::size_t answered = 0, given_up = 0, unanswered_attempts = 0;
    for (const auto& record : records) {
        answered += record.answered.size();
        given_up += record.given_up.size();
        unanswered_attempts += static_cast<std::size_t>(record.unanswered_attempts);
    }
    WARN(kills << " kills in "
               << std::chrono::duration_cast<std::chrono::milliseconds>(burst).count()
               << " ms; readings answered: " << answered << ", given up: " << given_up
               << ", attempts left unanswered: " << unanswered_attempts
               << "; starts on a port taken meanwhile: " << ports_taken);
    // Hundreds of readings may wait after the last kill; the sanitizer build is several times
    // slower to send them.
#ifdef ECU2MQTT_SANITIZED
    constexpr auto kDeliveryLimit = 180s;
#else
    constexpr auto kDeliveryLimit = 60s;
#endif
    INFO("readings waiting: " << test::query_number(dir.state,
                                                    "SELECT count(*) FROM pending_readings"));
    REQUIRE(everything_delivered(probe, dir.state, kDeliveryLimit));
    // The acknowledged readings leave the store (their removal follows the broker's answer).
    CHECK(test::wait_for_number(dir.state, "SELECT count(*) FROM pending_readings", 0) == 0);

    const auto messages = probe.messages();
    // What the ledger promises: an answered reading is published once, whether the first
    // attempt was answered or a re-send (a repeat of a kept reading is answered and not
    // published again); one given up on was published once or not at all; nothing else.
    for (int e = 0; e < kEcus; ++e) {
        INFO("ECU " << ecu_id(e));
        const EcuRecord& record = records[e];
        CHECK(record.wrong_replies == std::vector<std::string>{});
        REQUIRE(!record.answered.empty());

        const auto live = stamps_on(messages, state_topic(e));
        // Uploads go in order and each is answered before the next: none is late, none goes
        // on the history topic.
        CHECK(stamps_on(messages, history_topic(e)) == std::vector<std::string>{});
        CHECK(std::is_sorted(live.begin(), live.end())); // never back: copies come together
        CHECK(strictly_increasing(live));
        const auto lifetimes = values_on(messages, state_topic(e), "lifetime_energy_kwh");
        CHECK(std::is_sorted(lifetimes.begin(), lifetimes.end()));
        const Tally ecu_state = tally(record, live);
        CHECK(ecu_state.missing == std::vector<std::string>{});
        {
            INFO(around_first_twice(messages, state_topic(e), ecu_state));
            CHECK(ecu_state.twice == std::vector<std::string>{});
        }
        CHECK(ecu_state.given_up_twice == std::vector<std::string>{});
        CHECK(ecu_state.made_up == std::vector<std::string>{});
        // The inverters' states belong to the same reading and come and go with it.
        for (int i = 0; i < kInvertersPerEcu; ++i) {
            INFO("inverter " << inverter_uid(e, i));
            const auto inverter = stamps_on(messages, inverter_topic(e, i));
            CHECK(strictly_increasing(inverter));
            const Tally inverter_state = tally(record, inverter);
            CHECK(inverter_state.missing == std::vector<std::string>{});
            INFO(around_first_twice(messages, inverter_topic(e, i), inverter_state));
            CHECK(inverter_state.twice == std::vector<std::string>{});
            CHECK(inverter_state.given_up_twice == std::vector<std::string>{});
        }
    }
    CHECK(died_by_themselves == std::vector<std::string>{});
    CHECK(logged_errors == std::vector<std::string>{});
    CHECK(last->process().running());
    CHECK(lines_with(broker.log(), "dropped") == std::vector<std::string>{});
}

TEST_CASE("a power cut tears the WAL's next transaction: after the restart every answered reading "
          "is there, published once",
          "[crash]") {
    Scratch dir;
    test::MosquittoBroker broker;
    test::MqttProbe probe(broker.url(), "ecu2mqtt/#");
    const std::time_t first = first_stamp();
    const auto answered = [&](std::uint16_t port, int k) {
        return test::upload(port, ecu_upload(0, k, first + k)) == reply_to(first + k);
    };
    const auto kill = [](test::ServiceProcess& service) {
        service.process().signal(SIGKILL);
        REQUIRE(service.process().wait_for(10s));
    };
    {
        test::ServiceProcess service(broker.url(), dir.state);
        REQUIRE(answered(service.port(), 0));
        REQUIRE(answered(service.port(), 1));
        REQUIRE(everything_delivered(probe, dir.state, 10s));
        kill(service); // their removal from the store may not be committed: the receipt counts
    }
    {
        // Reading 2 is kept while no broker can be reached: it lives in the log only, and
        // nothing is on its way to a broker at the kill (kills in flight are a matter of their
        // own).
        test::ServiceProcess service("mqtt://127.0.0.1:" + std::to_string(test::free_port()),
                                     dir.state);
        REQUIRE(answered(service.port(), 2));
        kill(service);
    }
    const auto database = ecu2mqtt::Store::file_in(dir.state);
    const std::filesystem::path wal_path = database.string() + "-wal";
    // Nothing checkpointed the log before the kill: the answered transactions are in it.
    REQUIRE(std::filesystem::exists(wal_path));
    const std::string wal = test::read_file(wal_path.string());
    REQUIRE(wal.size() > test::kWalHeaderBytes);
    test::WalLayout layout = test::read_wal_layout(wal);
    // Read as SQLite wrote it: every frame valid, the last one ending a transaction.
    REQUIRE(layout.valid_bytes == wal.size());
    REQUIRE(layout.valid_frames >= 2);
    REQUIRE(layout.committed_frames == layout.valid_frames);
    const auto before = layout;
    const auto last_page = test::wal_frame_page(wal, layout, layout.valid_frames - 1);
    const auto first_page_number = test::wal_frame_page_number(wal, layout, 0);
    const auto first_page = test::wal_frame_page(wal, layout, 0);
    const auto half_frame = test::kWalFrameHeaderBytes + layout.page_size / 2;

    // The power goes while reading 3's transaction is being written. SQLite appends all frames
    // of a transaction and only then syncs; until that sync returns, the disk may hold any part
    // of them, and the ECU has no answer yet. Each torn frame carries the log's salts and the
    // checksum of the page meant to be there, so only the tear itself gives it away.
    SECTION("its first frame whole, its commit frame cut off halfway") {
        auto torn = test::next_wal_frame(layout, first_page_number, 0, changed(first_page));
        const auto commit = test::next_wal_frame(layout, before.last_page_number,
                                                 before.database_pages, changed(last_page));
        append_to(wal_path, torn + commit.substr(0, half_frame)); // the file ends mid-page
        const auto now = test::read_wal_layout(test::read_file(wal_path.string()));
        // The whole frame is valid in itself, but no commit frame follows it.
        CHECK(now.valid_frames == before.valid_frames + 1);
        CHECK(now.committed_frames == before.committed_frames);
    }
    SECTION("its first frame whole, the last sectors of its commit frame never written") {
        auto torn = test::next_wal_frame(layout, first_page_number, 0, changed(first_page));
        auto commit = test::next_wal_frame(layout, before.last_page_number, before.database_pages,
                                           changed(last_page));
        // The file has the frame's full length; what never reached the disk reads as zeros.
        std::fill(commit.begin() + static_cast<std::ptrdiff_t>(half_frame), commit.end(), '\0');
        append_to(wal_path, torn + commit);
        const auto now = test::read_wal_layout(test::read_file(wal_path.string()));
        CHECK(now.valid_frames == before.valid_frames + 1);
        CHECK(now.committed_frames == before.committed_frames);
    }
    SECTION("a log started afresh after a checkpoint: its header and half its first frame") {
        // A checkpoint moved everything into the database file and emptied the log. The next
        // transaction writes a new header (synced before any frame, synchronous=FULL), then its
        // frames; half of the first one arrived. The readings waiting for the broker are now in
        // the database file only.
        {
            ecu2mqtt::Database db(database, ecu2mqtt::Database::Mode::ReadWrite);
            db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
        }
        REQUIRE(!std::filesystem::exists(wal_path)); // the last connection removed it
        auto fresh = test::restarted_wal_header(layout, 0x2545f491);
        const auto frame = test::next_wal_frame(layout, before.last_page_number,
                                                before.database_pages, changed(last_page));
        std::ofstream(wal_path, std::ios::binary) << fresh + frame.substr(0, half_frame);
        const auto now = test::read_wal_layout(test::read_file(wal_path.string()));
        CHECK(now.valid_frames == 0);
        CHECK(now.checkpoint_sequence == before.checkpoint_sequence + 1);
    }

    std::vector<std::string> expected;
    const auto published_once_each = [&](int readings) {
        while (static_cast<int>(expected.size()) < readings)
            expected.push_back(iso(first + static_cast<std::time_t>(expected.size())));
        REQUIRE(everything_delivered(probe, dir.state, 10s));
        const auto messages = probe.messages();
        CHECK(stamps_on(messages, state_topic(0)) == expected);
        for (int i = 0; i < kInvertersPerEcu; ++i)
            CHECK(stamps_on(messages, inverter_topic(0, i)) == expected);
    };
    const auto no_trouble = [&](const std::string& log) {
        CHECK(lines_with(log, "level=error") == std::vector<std::string>{});
        CHECK(lines_with(log, "store_") == std::vector<std::string>{}); // unusable, write, read
        CHECK(test::query_rows(dir.state, "PRAGMA integrity_check", 1) ==
              std::vector<std::vector<std::string>>{{"ok"}});
    };
    {
        test::ServiceProcess restarted(broker.url(), dir.state);
        // The ECU sends reading 3 again, never having had an answer for it, then reading 4.
        CHECK(answered(restarted.port(), 3));
        CHECK(answered(restarted.port(), 4));
        published_once_each(5);
        no_trouble(restarted.log());
        kill(restarted); // its commits went where the torn bytes were: recovered once more
    }
    test::ServiceProcess again(broker.url(), dir.state);
    CHECK(answered(again.port(), 4)); // a repeat, answered and not published again
    CHECK(answered(again.port(), 5));
    published_once_each(6);
    no_trouble(again.log());
}

} // namespace test_crash
