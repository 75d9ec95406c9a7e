// The PVOutput queue in a real store: readings become statuses on the system's grid, the last of a
// slot wins, several ECUs sum only when all reported, and rows are marked from the reply.
#include "ecu2mqtt/store/pvoutput_queue.hpp"
#include "ecu2mqtt/store/store.hpp"
#include "ecu2mqtt/tools/history_command.hpp"
#include "support/temp_dir.hpp"

#include "ecu2mqtt/net/asio.hpp"
#include <catch2/catch.hpp>
#include <map>
#include <sstream>

using namespace ecu2mqtt;
using namespace std::chrono_literals;

namespace test_pvoutput_queue {
namespace {

struct QueueStore {
    test::TempDir dir;
    boost::asio::io_context io;
    std::filesystem::path file = Store::file_in(dir.path);
    Store store{file, {}, io.get_executor()};

    explicit QueueStore(PvoutputMapping mapping) {
        store.set_power_point_hook([mapping](Database& db, const PowerPoint& point) {
            queue_pvoutput_point(db, mapping, point);
        });
    }
    void commit(WriteBatch batch) {
        std::optional<std::string> result;
        store.submit(std::move(batch), [&](const std::string& error) { result = error; });
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (!result && std::chrono::steady_clock::now() < deadline) {
            io.restart();
            io.run_for(10ms);
        }
        REQUIRE(result);
        REQUIRE(result->empty());
    }
    void point(const std::string& ecu, const std::string& time, double w, double kwh) {
        WriteBatch batch;
        batch.add_power_point({ecu, time, w, kwh});
        commit(std::move(batch));
    }
};

PvoutputMapping one_system(int interval = 5) {
    PvoutputMapping mapping;
    mapping.system_of["*"] = "12345";
    mapping.interval_min = interval;
    return mapping;
}

} // namespace

TEST_CASE("slots are the ECU's local time rounded down to the interval", "[pvoutput]") {
    CHECK(pvoutput_slot_of("2026-06-01T10:07:31", 5) == "2026-06-01T10:05");
    CHECK(pvoutput_slot_of("2026-06-01T10:09:59", 10) == "2026-06-01T10:00");
    CHECK(pvoutput_slot_of("2026-06-01T10:44:00", 15) == "2026-06-01T10:30");
    CHECK(pvoutput_slot_of("2026-06-01T23:59:59", 15) == "2026-06-01T23:45");
    CHECK_FALSE(pvoutput_slot_of("garbage", 5));
}

TEST_CASE("each kept reading fills its slot; the last of a slot wins, a late re-send its own",
          "[pvoutput]") {
    QueueStore q(one_system(10));
    q.point("216000064136", "2026-06-01T10:01:00", 500, 1000.0);
    q.point("216000064136", "2026-06-01T10:06:00", 600, 1000.05);
    q.point("216000064136", "2026-06-01T10:21:00", 700, 1000.2);
    q.point("216000064136", "2026-06-01T10:11:00", 650, 1000.1);  // late re-send
    q.point("216000064136", "2026-06-01T10:03:00", 550, 1000.02); // older than the slot's
    PvoutputQueue queue(q.file);
    const auto pending = queue.pending("12345", 100);
    REQUIRE(pending.size() == 3);
    CHECK(pending[0].slot == "2026-06-01T10:00");
    CHECK(pending[0].power_w == 600);
    CHECK(pending[0].lifetime_wh == Approx(1000050));
    CHECK(pending[1].slot == "2026-06-01T10:10");
    CHECK(pending[1].power_w == 650);
    CHECK(pending[2].slot == "2026-06-01T10:20");
}

TEST_CASE("ECUs of one system sum only in slots where every one of them reported", "[pvoutput]") {
    PvoutputMapping mapping;
    mapping.system_of = {{"216000000001", "777"}, {"216000000002", "777"}};
    QueueStore q(mapping);
    q.point("216000000001", "2026-06-01T10:00:10", 300, 10.0);
    q.point("216000000002", "2026-06-01T10:01:00", 200, 20.0);
    q.point("216000000001", "2026-06-01T10:05:10", 310, 10.01); // the other ECU missed 10:05
    PvoutputQueue queue(q.file);
    const auto pending = queue.pending("777", 100);
    REQUIRE(pending.size() == 1);
    CHECK(pending[0].slot == "2026-06-01T10:00");
    CHECK(pending[0].power_w == 500);
    // The system's counter is the first ECU's lifetime plus what the others made since they
    // joined: the second ECU's own 20 kWh of lifetime are no energy of this day.
    CHECK(pending[0].lifetime_wh == Approx(10000));
}

TEST_CASE("an ECU that joins a shared system, or falls silent, never makes its counter jump or "
          "drop",
          "[pvoutput]") {
    QueueStore q(one_system()); // --pvoutput-system-id: every ECU feeds system 12345
    q.point("216000000001", "2026-06-01T10:00:00", 300, 1000.0);
    q.point("216000000001", "2026-06-01T10:05:00", 300, 1000.025);
    // A second ECU with 2,000 kWh of its own appears, and makes 10 Wh in each slot.
    q.point("216000000002", "2026-06-01T10:10:00", 100, 2000.0);
    q.point("216000000001", "2026-06-01T10:10:00", 300, 1000.05);
    q.point("216000000002", "2026-06-01T10:15:00", 100, 2000.01);
    q.point("216000000001", "2026-06-01T10:15:00", 300, 1000.075);
    PvoutputQueue queue(q.file);
    std::map<std::string, double> counter;
    for (const auto& status : queue.pending("12345", 100))
        counter[status.slot] = status.lifetime_wh;
    CHECK(counter["2026-06-01T10:00"] == Approx(1000000));
    CHECK(counter["2026-06-01T10:05"] == Approx(1000025));
    CHECK(counter["2026-06-01T10:10"] == Approx(1000050));
    CHECK(counter["2026-06-01T10:15"] == Approx(1000085));

    // The second ECU is silent for two days; the first goes on alone. Its part stays, frozen.
    q.point("216000000001", "2026-06-03T10:00:00", 300, 1010.0);
    counter.clear();
    for (const auto& status : queue.pending("12345", 100))
        counter[status.slot] = status.lifetime_wh;
    CHECK(counter["2026-06-03T10:00"] == Approx(1010000 + 10));
}

TEST_CASE("an ECU that wakes later than the other each morning is silent only after the "
          "silent time of that day",
          "[pvoutput]") {
    PvoutputMapping mapping;
    mapping.system_of["216000000001"] = "777";
    mapping.system_of["216000000002"] = "777";
    QueueStore q(mapping);
    for (const auto* ecu : {"216000000001", "216000000002"}) {
        q.point(ecu, "2026-06-01T17:50:00", 20, 10.0);
        q.point(ecu, "2026-06-01T17:55:00", 10, 10.001);
    }
    // The next morning the east roof's ECU wakes first.
    PvoutputQueue queue(q.file);
    const auto silent_at = [&](const std::string& time) {
        q.point("216000000001", "2026-06-02T" + time + ":00", 50, 10.01);
        return queue.silent_ecus(mapping);
    };
    for (const auto* time : {"06:30", "06:35", "06:40", "06:45", "06:50", "06:55"})
        CHECK(silent_at(time).empty());
    // Half an hour of the day without it: now it is missed.
    const auto silent = silent_at("07:00");
    REQUIRE(silent.size() == 1);
    CHECK(silent[0].ecu_id == "216000000002");
    CHECK(silent[0].last_slot == "2026-06-01T17:55");
    q.point("216000000002", "2026-06-02T07:05:00", 30, 10.002);
    CHECK(silent_at("07:05").empty());
}

TEST_CASE("an ECU named for the default system as well does not narrow it to that ECU",
          "[pvoutput]") {
    PvoutputMapping mapping = one_system();      // --pvoutput-system-id 12345
    mapping.system_of["216000000002"] = "12345"; // and --pvoutput-systems 216000000002=12345
    CHECK(mapping.ecus_named_for("12345").empty());
    QueueStore q(mapping);
    q.point("216000000001", "2026-06-01T10:00:00", 300, 10.0);
    q.point("216000000002", "2026-06-01T10:01:00", 200, 20.0);
    q.point("216000000001", "2026-06-01T10:05:00", 310, 10.01);
    q.point("216000000002", "2026-06-01T10:06:00", 210, 20.01);
    PvoutputQueue queue(q.file);
    const auto pending = queue.pending("12345", 100);
    REQUIRE(pending.size() == 2);
    CHECK(pending[1].power_w == 520); // both ECUs, not the named one alone
}

TEST_CASE("rows are marked from the per-status reply; a changed slot goes again", "[pvoutput]") {
    QueueStore q(one_system());
    q.point("216000064136", "2026-06-01T10:00:00", 100, 1.0);
    q.point("216000064136", "2026-06-01T10:05:00", 200, 1.1);
    PvoutputQueue queue(q.file);
    auto pending = queue.pending("12345", 100);
    REQUIRE(pending.size() == 2);
    WriteBatch marks;
    PvoutputQueue::mark_sent(marks, pending, {true, false}, 1780000000, "not added");
    q.commit(std::move(marks));
    CHECK(queue.pending("12345", 100).empty());
    const auto counts = queue.counts();
    CHECK(counts.sent == 1);
    CHECK(counts.rejected == 1);
    q.point("216000064136", "2026-06-01T10:01:00", 150, 1.05); // a newer reading of 10:00
    pending = queue.pending("12345", 100);
    REQUIRE(pending.size() == 1);
    CHECK(pending[0].power_w == 150);
}

TEST_CASE("rows past the age limit are expired, not dropped; an ended day closes", "[pvoutput]") {
    QueueStore q(one_system());
    q.point("216000064136", "2026-05-01T12:00:00", 900, 5.0);
    q.point("216000064136", "2026-05-01T13:00:00", 1200, 6.0);
    q.point("216000064136", "2026-05-20T12:00:00", 800, 9.0);
    PvoutputQueue queue(q.file);
    const auto day = queue.day_to_close("12345", "2026-04-01", 0);
    REQUIRE(day);
    CHECK(day->day == "2026-05-01");
    CHECK(day->generated_wh == Approx(1000));
    CHECK(day->peak_power_w == 1200);
    CHECK(day->peak_time == "13:00");
    CHECK(queue.pending_before("2026-05-06T00:00") == 2);
    WriteBatch expire;
    PvoutputQueue::mark_expired(expire, "2026-05-06T00:00", 1780000000);
    q.commit(std::move(expire));
    CHECK(queue.counts().expired == 2);
    CHECK(queue.pending("12345", 10).size() == 1);
    q.point("216000064136", "2026-05-01T12:01:00", 950, 5.01); // too late: stays expired
    CHECK(queue.counts().expired == 2);
    CHECK_FALSE(queue.day_to_close("12345", "2026-05-06", 0));
}

TEST_CASE("the queue is pruned with the history, except what still waits to be sent",
          "[pvoutput]") {
    QueueStore q(one_system());
    q.point("216000064136", "2026-05-01T12:00:00", 900, 5.0);
    q.point("216000064136", "2026-05-01T12:05:00", 950, 5.1);
    q.point("216000064136", "2026-05-20T12:00:00", 800, 9.0);
    PvoutputQueue queue(q.file);
    auto old = queue.pending("12345", 1); // the oldest: sent; 12:05 still waits
    REQUIRE(old.size() == 1);
    WriteBatch marks;
    PvoutputQueue::mark_sent(marks, old, {true}, 1780000000, "");
    q.commit(std::move(marks));
    const auto day = queue.day_to_close("12345", "2026-04-01", 0); // the 1st has ended
    REQUIRE(day);
    WriteBatch closed;
    PvoutputQueue::mark_output_sent(closed, *day);
    q.commit(std::move(closed));
    REQUIRE(queue.counts().sent == 1);

    WriteBatch prune;
    prune.prune_history("2026-05-10");
    q.commit(std::move(prune));
    const auto counts = queue.counts();
    CHECK(counts.sent == 0);    // went with the history
    CHECK(counts.pending == 2); // 12:05 of the pruned day, and the 20th
    CHECK(queue.outputs_sent(10).empty());
    const auto waiting = queue.pending("12345", 10);
    REQUIRE(waiting.size() == 2);
    CHECK(waiting[0].slot == "2026-05-01T12:05");
}

TEST_CASE("history --pvoutput lists every status, how far it got, and the days sent",
          "[pvoutput]") {
    QueueStore q(one_system());
    q.point("216000064136", "2026-06-01T10:00:00", 100, 1.0);
    q.point("216000064136", "2026-06-01T10:05:00", 200, 1.1);
    q.point("216000064136", "2026-06-01T10:10:00", 300, 1.2);
    PvoutputQueue queue(q.file);
    WriteBatch marks;
    PvoutputQueue::mark_sent(marks, queue.pending("12345", 2), {true, false}, 1780000000,
                             "not added by PVOutput");
    PvoutputQueue::mark_output_sent(marks,
                                    {"12345", "2026-05-31", 15000, 2500, "12:45", 1780000001});
    q.commit(std::move(marks));
    HistoryOptions options;
    options.pvoutput = true;
    std::ostringstream out, err;
    CHECK(run_history(q.dir.path, options, out, err) == 0);
    CHECK(err.str().empty());
    CHECK(out.str() ==
          "kind,system_id,date,time,power_w,energy_wh,state,sent_at,reason\r\n"
          "status,12345,2026-06-01,10:00,100,1000,sent,2026-05-28T20:26:40Z,\r\n"
          "status,12345,2026-06-01,10:05,200,1100,rejected,2026-05-28T20:26:40Z,not added by "
          "PVOutput\r\n"
          "status,12345,2026-06-01,10:10,300,1200,pending,,\r\n"
          "output,12345,2026-05-31,12:45,2500,15000,sent,2026-05-28T20:26:41Z,\r\n");
}

} // namespace test_pvoutput_queue
