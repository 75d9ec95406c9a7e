// The store against a real SQLite file: what is committed is there after reopening, writes are
// grouped, failures are reported per batch and leave nothing half-written.
#include "ecu2mqtt/mqtt/reading_codec.hpp"
#include "ecu2mqtt/store/store.hpp"
#include "support/mosquitto_broker.hpp"
#include "support/store_probe.hpp"

#include "ecu2mqtt/net/asio.hpp"
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <thread>
#include <unistd.h>

using namespace ecu2mqtt;
using namespace std::chrono_literals;

namespace test_store {
namespace {

using test::TempDir;

// Runs the io context until `count` completions have arrived; returns their errors in order.
struct Completions {
    boost::asio::io_context io;
    std::vector<std::string> errors;
    Store::Done collect() {
        return [this](const std::string& error) { errors.push_back(error); };
    }
    bool wait_for(std::size_t count) {
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (errors.size() < count && std::chrono::steady_clock::now() < deadline) {
            io.restart();
            io.run_for(10ms);
        }
        return errors.size() >= count;
    }
};

WriteBatch reading(std::uint64_t sequence, const std::string& ecu = "216000064136") {
    WriteBatch batch;
    batch.put_reading(sequence, ecu, 1700000000 + static_cast<std::int64_t>(sequence),
                      encode_reading({{"ecu2mqtt/" + ecu + "/state",
                                       "{\"n\":" + std::to_string(sequence) + "}", true}}));
    return batch;
}

std::int64_t single_number(const std::filesystem::path& file, const std::string& sql) {
    Database db(file, Database::Mode::ReadOnly);
    auto query = db.prepare(sql);
    REQUIRE(query.step());
    return query.column_int(0);
}

} // namespace

TEST_CASE("what a store committed is there after reopening it") {
    TempDir dir;
    const auto file = Store::file_in(dir.path / "state");
    std::string id;
    {
        Completions done;
        Store store(file, {}, done.io.get_executor());
        id = store.database_id();
        CHECK(id.size() == 16);
        for (std::uint64_t s = 1; s <= 3; ++s)
            store.submit(reading(s), done.collect());
        WriteBatch state;
        state.put_ecu_state("216000064136", R"({"ecu_id":"216000064136"})");
        state.keep_raw("216000064136", 1700000000, "undecodable", R"({"raw":"APS1"})");
        store.submit(std::move(state), done.collect());
        WriteBatch drop;
        drop.drop_reading(2);
        store.submit(std::move(drop), done.collect());
        REQUIRE(done.wait_for(5));
        CHECK(done.errors == std::vector<std::string>(5));
    }
    Completions done;
    Store store(file, {}, done.io.get_executor());
    CHECK(store.database_id() == id);
    const auto pending = store.pending_summary();
    REQUIRE(pending.size() == 2);
    CHECK(pending[0].sequence == 1);
    CHECK(pending[1].sequence == 3);
    CHECK(pending[1].kept_at_s == 1700000003);
    const auto rows = store.pending_after(1, 3, 10);
    REQUIRE(rows.size() == 1);
    const auto messages = decode_reading(rows[0].messages);
    REQUIRE(messages);
    CHECK(messages->at(0).payload == "{\"n\":3}");
    CHECK(store.last_sequence() == 3);
    const auto states = store.ecu_states();
    REQUIRE(states.size() == 1);
    CHECK(states[0].second == R"({"ecu_id":"216000064136"})");
    CHECK(store.raw_messages() == 1);
    CHECK(single_number(file, "PRAGMA user_version") == Store::kSchemaVersion);
}

TEST_CASE("channel powers keep each ECU's newest day, and go with the ECU's state", "[weak]") {
    TempDir dir;
    const auto file = Store::file_in(dir.path / "state");
    Completions done;
    Store store(file, {}, done.io.get_executor());
    WriteBatch write;
    for (const auto* time : {"2024-06-20T09:00:00", "2024-06-20T16:00:00", "2024-06-21T08:00:00",
                             "2024-06-21T12:00:00"})
        write.add_channel_powers({"216000064136", time, R"([["806000000001",1,250.0]])"});
    write.add_channel_powers({"216000099999", "2024-06-19T12:00:00", "[]"});
    store.submit(std::move(write), done.collect());
    REQUIRE(done.wait_for(1));
    // More than a day before the newest of its ECU goes; another ECU's rows stay.
    const auto kept = store.channel_powers("216000064136");
    REQUIRE(kept.size() == 3);
    CHECK(kept[0].first == "2024-06-20T16:00:00");
    CHECK(kept[2].first == "2024-06-21T12:00:00");
    CHECK(kept[2].second == R"([["806000000001",1,250.0]])");
    CHECK(store.channel_powers("216000099999").size() == 1);
    WriteBatch drop;
    drop.drop_ecu_state("216000064136");
    store.submit(std::move(drop), done.collect());
    REQUIRE(done.wait_for(2));
    CHECK(store.channel_powers("216000064136").empty());
    CHECK(done.errors == std::vector<std::string>(2));
}

TEST_CASE("the database is in write-ahead-log mode and syncs every commit in full") {
    TempDir dir;
    const auto file = Store::file_in(dir.path);
    boost::asio::io_context io;
    Store store(file, {}, io.get_executor());
    Database db(file, Database::Mode::ReadOnly);
    auto mode = db.prepare("PRAGMA journal_mode");
    REQUIRE(mode.step());
    CHECK(mode.column_text(0) == "wal");
}

TEST_CASE("sequences are never given twice, even after the newest reading left") {
    TempDir dir;
    const auto file = Store::file_in(dir.path);
    {
        Completions done;
        Store store(file, {}, done.io.get_executor());
        store.submit(reading(7), done.collect());
        WriteBatch drop;
        drop.drop_reading(7);
        store.submit(std::move(drop), done.collect());
        REQUIRE(done.wait_for(2));
    }
    Completions done;
    Store store(file, {}, done.io.get_executor());
    CHECK(store.pending_summary().empty());
    CHECK(store.last_sequence() == 7);
}

TEST_CASE("batches submitted while a commit waits go into one transaction") {
    TempDir dir;
    const auto file = Store::file_in(dir.path);
    Completions done;
    Store store(file, {}, done.io.get_executor());
    {
        test::DatabaseWriteLock lock(file); // the writer's first transaction waits for it
        for (std::uint64_t s = 1; s <= 50; ++s)
            store.submit(reading(s), done.collect());
        std::this_thread::sleep_for(200ms);
    }
    REQUIRE(done.wait_for(50));
    CHECK(done.errors == std::vector<std::string>(50));
    const auto stats = store.stats();
    CHECK(stats.batches == 50);
    CHECK(stats.transactions <= 2); // the one that waited, then all the rest together
    CHECK(store.pending_summary().size() == 50);
}

TEST_CASE("a lock held past the busy timeout fails every batch of that round, and keeps none") {
    TempDir dir;
    const auto file = Store::file_in(dir.path);
    Completions done;
    StoreLimits limits;
    limits.busy_timeout = 100ms;
    Store store(file, limits, done.io.get_executor());
    {
        test::DatabaseWriteLock lock(file);
        store.submit(reading(1), done.collect());
        REQUIRE(done.wait_for(1));
    }
    CHECK_THAT(done.errors[0], Catch::Contains("locked"));
    CHECK(store.pending_summary().empty());
    CHECK(store.stats().failed_batches == 1);
    CHECK(store.stats().failing);
    CHECK_THAT(store.stats().last_error, Catch::Contains("locked"));
    store.submit(reading(2), done.collect()); // the lock is gone: writing works again
    REQUIRE(done.wait_for(2));
    CHECK(done.errors[1].empty());
    CHECK_FALSE(store.stats().failing);
    CHECK_THAT(store.stats().last_error, Catch::Contains("locked")); // what happened, kept
    CHECK(store.pending_summary().size() == 1);
}

TEST_CASE("the store counts as failing until a reading is kept again, not a small state write") {
    // On a full disk a small state write may still fit while every reading fails.
    TempDir dir;
    const auto file = Store::file_in(dir.path);
    Completions done;
    StoreLimits limits;
    limits.busy_timeout = 100ms;
    Store store(file, limits, done.io.get_executor());
    {
        test::DatabaseWriteLock lock(file);
        store.submit(reading(1), done.collect());
        REQUIRE(done.wait_for(1));
    }
    REQUIRE(store.stats().failing);
    WriteBatch state_only;
    state_only.put_ecu_state("216000000001", "{}");
    store.submit(std::move(state_only), done.collect());
    REQUIRE(done.wait_for(2));
    CHECK(done.errors[1].empty());
    CHECK(store.stats().failing); // readings have not been kept since
    store.submit(reading(2), done.collect());
    REQUIRE(done.wait_for(3));
    CHECK_FALSE(store.stats().failing);
}

TEST_CASE("a database of a newer schema is refused, naming both versions") {
    TempDir dir;
    const auto file = Store::file_in(dir.path);
    {
        boost::asio::io_context io;
        Store store(file, {}, io.get_executor());
    }
    {
        Database db(file, Database::Mode::ReadWrite);
        db.exec("PRAGMA user_version = 99");
    }
    boost::asio::io_context io;
    try {
        Store store(file, {}, io.get_executor());
        FAIL("a newer schema was accepted");
    } catch (const DatabaseError& e) {
        CHECK_THAT(e.what(),
                   Catch::Contains("schema version 99") &&
                       Catch::Contains("reads version " + std::to_string(Store::kSchemaVersion)));
    }
}

TEST_CASE("a file that is not a database is refused with its path") {
    TempDir dir;
    const auto file = Store::file_in(dir.path);
    std::ofstream(file) << std::string(4096, 'x');
    boost::asio::io_context io;
    CHECK_THROWS_WITH(Store(file, {}, io.get_executor()), Catch::Contains(file.string()));
}

TEST_CASE("raw messages are bounded: past the limit the oldest go first") {
    TempDir dir;
    Completions done;
    StoreLimits limits;
    limits.raw_max_messages = 10;
    const auto file = Store::file_in(dir.path);
    Store store(file, limits, done.io.get_executor());
    for (int i = 0; i < 25; ++i) {
        WriteBatch batch;
        batch.keep_raw("216000064136", i, "test", "line " + std::to_string(i));
        store.submit(std::move(batch), done.collect());
    }
    REQUIRE(done.wait_for(25));
    CHECK(store.raw_messages() == 10);
    CHECK(single_number(file, "SELECT min(received_at) FROM raw_messages") == 15);
}

TEST_CASE("the history keeps each reading once, totals per ECU day, and forgets old days") {
    TempDir dir;
    Completions done;
    const auto file = Store::file_in(dir.path);
    Store store(file, {}, done.io.get_executor());
    WriteBatch batch;
    batch.add_power_point({"A", "2026-11-24T12:00:00", 500, 100.0});
    batch.add_power_point({"A", "2026-11-25T09:00:00", 200, 101.0});
    batch.add_power_point({"A", "2026-11-25T12:00:00", 900, 102.5});
    batch.add_power_point({"A", "2026-11-25T12:00:00", 900, 102.5}); // sent again
    batch.add_power_point({"B", "2026-11-25T12:00:00", 50, 7.0});
    store.submit(std::move(batch), done.collect());
    REQUIRE(done.wait_for(1));
    {
        Database db(file, Database::Mode::ReadOnly);
        auto day = db.prepare("SELECT first_lifetime_kwh, last_lifetime_kwh, peak_power_w, "
                              "readings FROM daily_energy WHERE ecu_id = 'A' AND "
                              "day = '2026-11-25'");
        REQUIRE(day.step());
        CHECK(day.column_double(0) == 101.0);
        CHECK(day.column_double(1) == 102.5);
        CHECK(day.column_double(2) == 900);
        CHECK(day.column_int(3) == 2);
    }
    WriteBatch prune;
    prune.prune_history("2026-11-25");
    store.submit(std::move(prune), done.collect());
    REQUIRE(done.wait_for(2));
    CHECK(single_number(file, "SELECT count(*) FROM power_points") == 3);
    CHECK(single_number(file, "SELECT count(*) FROM daily_energy WHERE day < '2026-11-25'") == 0);
}

TEST_CASE("a stored reading decodes to the messages it was made of, a cut one never gives them "
          "all") {
    const std::vector<OutgoingMessage> messages{
        {"ecu2mqtt/1/state", "{\"a\":1}", true},
        {"ecu2mqtt/1/history", std::string("bin\0ary", 7), false},
        {"t", "", true}};
    const auto record = encode_reading(messages);
    const auto back = decode_reading(record);
    REQUIRE(back);
    REQUIRE(back->size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
        CHECK(back->at(i).topic == messages[i].topic);
        CHECK(back->at(i).payload == messages[i].payload);
        CHECK(back->at(i).retain == messages[i].retain);
    }
    for (std::size_t cut = 1; cut < record.size(); ++cut) {
        const auto part = decode_reading(record.substr(0, cut));
        CHECK((!part || part->size() < 3));
    }
    CHECK_FALSE(decode_reading("").has_value());
    CHECK_FALSE(decode_reading("X").has_value());
}

TEST_CASE("kept readings are stored one by one, the newest N per ECU, and go with the ECU") {
    TempDir dir;
    Completions done;
    Store store(Store::file_in(dir.path), {}, done.io.get_executor());
    for (int minute = 0; minute < 8; ++minute) {
        WriteBatch batch;
        batch.remember_kept("A", "2026112510" + std::to_string(10 + minute) + "00",
                            std::to_string(minute), 5);
        store.submit(std::move(batch), done.collect());
    }
    WriteBatch other;
    other.remember_kept("B", "20261125100000", "42", 5);
    store.submit(std::move(other), done.collect());
    REQUIRE(done.wait_for(9));
    const auto kept = store.kept_readings("A");
    REQUIRE(kept.size() == 5);
    CHECK(kept.front().first == "20261125101300"); // the three oldest went
    CHECK(kept.back().first == "20261125101700");
    CHECK(kept.back().second == "7");
    WriteBatch forget;
    forget.drop_ecu_state("A");
    store.submit(std::move(forget), done.collect());
    REQUIRE(done.wait_for(10));
    CHECK(store.kept_readings("A").empty());
    CHECK(store.kept_readings("B").size() == 1);
}

TEST_CASE("a second store on the same file is refused, naming the state directory and the pid") {
    TempDir dir;
    boost::asio::io_context io;
    Store first(Store::file_in(dir.path), {}, io.get_executor());
    try {
        Store second(Store::file_in(dir.path), {}, io.get_executor());
        FAIL("two stores share one database");
    } catch (const DatabaseError& e) {
        CHECK_THAT(e.what(), Catch::Contains(dir.path.string()) &&
                                 Catch::Contains("in use by another ecu2mqtt (pid " +
                                                 std::to_string(::getpid()) + ")") &&
                                 Catch::Contains("--state-dir"));
    }
}

TEST_CASE("past its queue limit the store fails a batch at once instead of holding it") {
    TempDir dir;
    Completions done;
    StoreLimits limits;
    limits.max_queued_bytes = 64 << 10;
    limits.busy_timeout = 300ms;
    const auto file = Store::file_in(dir.path);
    Store store(file, limits, done.io.get_executor());
    {
        test::DatabaseWriteLock lock(file); // the writer waits: submissions pile up
        for (int i = 0; i < 20; ++i) {
            WriteBatch batch;
            batch.keep_raw("216000064136", i, "test", std::string(16 << 10, 'x'));
            store.submit(std::move(batch), done.collect());
        }
        REQUIRE(done.wait_for(20));
    }
    std::size_t refused = 0;
    for (const auto& error : done.errors)
        refused += error.find("the store is behind") != std::string::npos ? 1 : 0;
    CHECK(refused >= 15); // at most 64 KiB queued: a few 16 KiB batches, the rest refused
    CHECK(store.stats().failed_batches == 20); // the queued ones failed on the lock
}

} // namespace test_store
