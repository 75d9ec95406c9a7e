// The PVOutput uploader against a stand-in PVOutput on loopback that follows the documented API,
// with a movable clock: statuses at the right local times with the right Wh and W, a backlog in
// batches of 30 oldest first, the rate limit honoured, a refused status kept apart, nothing lost
// when stopped mid-batch, a stop on 401, and a named TLS error for an untrusted certificate.
#include "ecu2mqtt/http/status_render.hpp"
#include "ecu2mqtt/net/pvoutput_client.hpp"
#include "ecu2mqtt/store/pvoutput_queue.hpp"
#include "support/fake_pvoutput.hpp"
#include "support/fixed_clock.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <sstream>

using namespace ecu2mqtt;
using namespace std::chrono_literals;

namespace test_pvoutput_client {
namespace {

constexpr const char* kKey = "0123456789abcdef0123456789abcdef01234567";
constexpr const char* kEcu = "216000064136";

struct Uploader {
    test::TempDir dir;
    boost::asio::io_context io;
    std::ostringstream log_text;
    Logger log{log_text, LogLevel::Debug};
    test::FixedClock clock{{2026, 6, 2, 6, 0, 0}};
    PvoutputMapping mapping;
    std::unique_ptr<Store> store;
    std::unique_ptr<PvoutputClient> client;

    explicit Uploader(const std::string& url, int interval = 5) {
        mapping.system_of["*"] = "4242";
        mapping.interval_min = interval;
        open_store();
        start_client(url);
    }
    void open_store() {
        store = std::make_unique<Store>(Store::file_in(dir.path), StoreLimits{}, io.get_executor());
        store->set_power_point_hook([m = mapping](Database& db, const PowerPoint& point) {
            queue_pvoutput_point(db, m, point);
        });
    }
    void start_client(const std::string& url, const std::string& key = kKey) {
        PvoutputClientConfig config;
        config.api_key = key;
        config.mapping = mapping;
        config.url = url;
        config.poll = 2ms;
        config.request_timeout = 5s;
        client = std::make_unique<PvoutputClient>(io.get_executor(), config, *store, clock, log);
        client->start();
    }
    // Restarts the store and the uploader with another mapping.
    void remap(PvoutputMapping other, const std::string& url) {
        client.reset();
        store.reset();
        mapping = std::move(other);
        open_store();
        start_client(url);
    }
    void point(const std::string& time, double w, double kwh, const std::string& ecu = kEcu) {
        WriteBatch batch;
        batch.add_power_point({ecu, time, w, kwh});
        bool done = false;
        store->submit(std::move(batch), [&](const std::string& error) {
            REQUIRE(error.empty());
            done = true;
        });
        REQUIRE(run_until([&] { return done; }));
    }
    // Runs the io context until `condition` holds, at most 20 s.
    template <typename Condition> bool run_until(Condition condition) {
        const auto deadline = std::chrono::steady_clock::now() + 20s;
        while (!condition() && std::chrono::steady_clock::now() < deadline) {
            io.restart();
            io.run_for(5ms);
        }
        return condition();
    }
    // Runs for `span` of real time (to show that nothing happens meanwhile).
    void run_for(std::chrono::milliseconds span) {
        const auto deadline = std::chrono::steady_clock::now() + span;
        while (std::chrono::steady_clock::now() < deadline) {
            io.restart();
            io.run_for(5ms);
        }
    }
};

std::string hhmm(int minutes) {
    const auto two = [](int n) { return std::string(n < 10 ? "0" : "") + std::to_string(n); };
    return two(minutes / 60) + ":" + two(minutes % 60);
}

// A sunny day's upload every five minutes (two seconds past), 06:00 to 20:00.
struct SimulatedDay {
    std::vector<std::tuple<std::string, double, double>> points; // ECU time, W, lifetime kWh
    explicit SimulatedDay(const std::string& date = "2026-06-02", double start_kwh = 1234.5) {
        double kwh = start_kwh;
        for (int minute = 6 * 60; minute <= 20 * 60; minute += 5) {
            const double w = std::max(0.0, 2400 * std::sin((minute - 360) * M_PI / 840.0));
            kwh += w * 5 / 60 / 1000;
            points.emplace_back(date + "T" + hhmm(minute) + ":02", w, kwh);
        }
    }
};

} // namespace

TEST_CASE("a day of uploads arrives as statuses at the ECU's local times with Wh and W",
          "[pvoutput]") {
    test::FakePvoutput pvoutput(kKey);
    Uploader up(pvoutput.url());
    const SimulatedDay day;
    for (const auto& [time, w, kwh] : day.points)
        up.point(time, w, kwh);
    up.clock.set({2026, 6, 2, 20, 5, 0});
    // Every slot but the newest (a later reading of 20:00 could still change it).
    const auto expected = day.points.size() - 1;
    REQUIRE(up.run_until([&] { return pvoutput.statuses().size() == expected; }));
    const auto statuses = pvoutput.statuses();
    for (std::size_t i = 0; i < expected; ++i) {
        const auto& [time, w, kwh] = day.points[i];
        const auto key = "4242 20260602 " + time.substr(11, 5);
        INFO(key);
        REQUIRE(statuses.contains(key));
        CHECK(statuses.at(key).v1 == std::llround(kwh * 1000));
        CHECK(statuses.at(key).v2 == std::llround(w));
        CHECK(statuses.at(key).cumulative);
    }
    CHECK(pvoutput.misuse().empty());
    CHECK(up.log_text.str().find(kKey) == std::string::npos);

    // The next morning's first reading ends the day: its last status, and the day's output.
    up.point("2026-06-03T06:00:05", 3, std::get<2>(day.points.back()) + 0.001);
    up.clock.set({2026, 6, 3, 6, 1, 0});
    REQUIRE(up.run_until([&] { return pvoutput.outputs().size() == 1; }));
    // The queue is read statement by statement: the day's output may overtake its last status by
    // a tick, never leave it behind.
    CHECK(up.run_until([&] { return pvoutput.statuses().contains("4242 20260602 20:00"); }));
    const auto output = pvoutput.outputs().front();
    const auto generated =
        std::llround((std::get<2>(day.points.back()) - std::get<2>(day.points.front())) * 1000);
    CHECK_THAT(output, Catch::Contains("d=20260602&g=" + std::to_string(generated)) &&
                           Catch::Contains("&pp=2400&pt=13:00"));
}

TEST_CASE("PVOutput down for six hours: the backlog goes in batches of 30, oldest first, all of "
          "it",
          "[pvoutput]") {
    test::FakePvoutput pvoutput(kKey);
    pvoutput.set_down(true);
    Uploader up(pvoutput.url());
    std::vector<std::string> slots;
    double kwh = 100;
    for (int minute = 8 * 60; minute < 14 * 60; minute += 5) { // 72 uploads
        kwh += 0.1;
        up.point("2026-06-02T" + hhmm(minute) + ":30", minute, kwh);
        slots.push_back("20260602 " + hhmm(minute));
    }
    up.clock.set({2026, 6, 2, 14, 0, 0});
    REQUIRE(up.run_until([&] { return up.client->snapshot().state == "backing off"; }));
    const auto tries = pvoutput.requests().size(); // refused at the door: none recorded
    up.run_for(100ms);
    CHECK(pvoutput.requests().size() == tries); // it waits out its backoff
    CHECK(up.client->snapshot().backlog == 72);
    CHECK_THAT(up.client->snapshot().last_error, Catch::Contains("127.0.0.1"));

    pvoutput.set_down(false);
    up.clock.set({2026, 6, 2, 16, 0, 0});
    REQUIRE(up.run_until([&] { return pvoutput.statuses().size() == 71; }));
    const auto requests = pvoutput.requests();
    REQUIRE(requests.size() == 3);
    CHECK(requests[0].path == "/service/r2/addbatchstatus.jsp");
    CHECK(requests[0].statuses == 30);
    CHECK(requests[0].first == slots[0]);
    CHECK(requests[1].statuses == 30);
    CHECK(requests[1].first == slots[30]);
    CHECK(requests[2].statuses == 11);
    CHECK(requests[2].first == slots[60]);
    for (std::size_t i = 0; i + 1 < slots.size(); ++i)
        CHECK(pvoutput.statuses().contains("4242 " + slots[i]));
    REQUIRE(up.run_until([&] { return up.client->snapshot().state == "current"; }));
    CHECK(up.client->snapshot().backlog == 1); // the newest slot, still open
}

TEST_CASE("a 403 rate limit with X-Rate-Limit-Reset: nothing is sent before that time",
          "[pvoutput]") {
    test::FakePvoutput pvoutput(kKey);
    Uploader up(pvoutput.url());
    const auto reset = to_epoch_seconds({2026, 6, 2, 11, 0, 0});
    pvoutput.set_rate_limited_until(reset);
    up.clock.set({2026, 6, 2, 10, 20, 0});
    up.point("2026-06-02T10:00:00", 500, 10.0);
    up.point("2026-06-02T10:05:00", 600, 10.1);
    up.point("2026-06-02T10:10:00", 700, 10.2);
    REQUIRE(up.run_until([&] { return up.client->snapshot().state == "rate-limited"; }));
    const auto refused = pvoutput.requests().size();
    CHECK(up.client->snapshot().waiting_until_unix == reset);
    CHECK(up.client->snapshot().requests_left == 0);
    pvoutput.set_rate_limited_until(0);
    up.clock.set({2026, 6, 2, 10, 59, 59});
    up.run_for(100ms);
    CHECK(pvoutput.requests().size() == refused);
    up.clock.set({2026, 6, 2, 11, 0, 0});
    REQUIRE(up.run_until([&] { return pvoutput.statuses().size() == 2; }));
    CHECK(up.log_text.str().find("pvoutput_rate_limited") != std::string::npos);
}

TEST_CASE("an ECU clock years behind: its statuses expire, and the warning names the clock",
          "[pvoutput]") {
    test::FakePvoutput pvoutput(kKey);
    Uploader up(pvoutput.url());
    // Host time is 2026-06-02; the ECU's clock says 2020.
    up.point("2020-01-01T10:05:00", 300, 5.0);
    REQUIRE(up.run_until([&] { return up.client->snapshot().expired == 1; }));
    CHECK(pvoutput.statuses().empty());
    const auto log = up.log_text.str();
    CHECK_THAT(log, Catch::Contains("event=pvoutput_statuses_expired"));
    CHECK_THAT(log, Catch::Contains("newest_status=2020-01-01T10:05"));
    CHECK_THAT(log, Catch::Contains("set the ECU's date and time"));
}

TEST_CASE("a rate-limit reset in the past or days ahead waits a minute, or an hour at most",
          "[pvoutput]") {
    const auto now = to_epoch_seconds({2026, 6, 2, 10, 20, 0});
    for (const auto& [reset, expected] :
         {std::pair{now - 600, now + 60}, std::pair{now + 3 * 86400, now + 3600}}) {
        test::FakePvoutput pvoutput(kKey);
        Uploader up(pvoutput.url());
        pvoutput.set_rate_limited_until(reset);
        up.clock.set({2026, 6, 2, 10, 20, 0});
        up.point("2026-06-02T10:00:00", 500, 10.0);
        up.point("2026-06-02T10:05:00", 600, 10.1);
        REQUIRE(up.run_until([&] { return up.client->snapshot().state == "rate-limited"; }));
        CHECK(up.client->snapshot().waiting_until_unix == expected);
    }
}

TEST_CASE("a reply that refuses one status of a batch: that row alone is kept as rejected",
          "[pvoutput]") {
    test::FakePvoutput pvoutput(kKey);
    pvoutput.set_down(true);
    Uploader up(pvoutput.url());
    for (int minute = 600; minute <= 620; minute += 5)
        up.point("2026-06-02T" + hhmm(minute) + ":00", minute, minute / 100.0);
    pvoutput.refuse_status("20260602", "10:10");
    pvoutput.set_down(false);
    up.clock.set({2026, 6, 2, 12, 0, 0});
    REQUIRE(up.run_until([&] { return up.client->snapshot().sent == 3; }));
    const auto snapshot = up.client->snapshot();
    CHECK(snapshot.rejected == 1);
    CHECK(snapshot.backlog == 1); // 10:20, still open
    PvoutputQueue queue(Store::file_in(up.dir.path));
    const auto rows = queue.rows(10);
    const auto refused = std::find_if(rows.begin(), rows.end(), [](const PvoutputStatus& row) {
        return row.slot == "2026-06-02T10:10";
    });
    REQUIRE(refused != rows.end());
    CHECK(refused->state == PvoutputRowState::Rejected);
    CHECK(up.log_text.str().find("pvoutput_status_not_added") != std::string::npos);
}

TEST_CASE("a batch reply that does not name a status keeps it pending; it goes again",
          "[pvoutput]") {
    test::FakePvoutput pvoutput(kKey);
    pvoutput.set_down(true);
    Uploader up(pvoutput.url());
    for (int minute = 600; minute <= 620; minute += 5)
        up.point("2026-06-02T" + hhmm(minute) + ":00", minute, minute / 100.0);
    pvoutput.leave_out_of_reply("20260602", "10:10");
    pvoutput.set_down(false);
    up.clock.set({2026, 6, 2, 12, 0, 0});
    REQUIRE(up.run_until([&] { return up.client->snapshot().sent == 4; }));
    CHECK(up.client->snapshot().rejected == 0);
    CHECK(pvoutput.statuses().size() == 4); // 10:10 too, in a later request
    CHECK(up.log_text.str().find("pvoutput_reply_incomplete") != std::string::npos);
}

TEST_CASE("stopped in the middle of a batch: nothing is lost, the batch goes again", "[pvoutput]") {
    test::FakePvoutput pvoutput(kKey);
    pvoutput.set_hang(true);
    auto up = std::make_unique<Uploader>(pvoutput.url());
    up->client.reset(); // the uploads queue up while the uploader is away
    for (int minute = 600; minute <= 650; minute += 5)
        up->point("2026-06-02T" + hhmm(minute) + ":00", minute, minute / 100.0);
    up->clock.set({2026, 6, 2, 12, 0, 0});
    up->start_client(pvoutput.url());
    REQUIRE(up->run_until([&] { return pvoutput.hung() == 1; }));
    // As a kill would leave it: the batch went out, no answer came back.
    up->client.reset();
    up->store.reset();
    CHECK(pvoutput.statuses().empty());
    pvoutput.set_hang(false);
    up->open_store();
    up->start_client(pvoutput.url());
    REQUIRE(up->run_until([&] { return pvoutput.statuses().size() == 10; }));
    const auto requests = pvoutput.requests();
    REQUIRE(requests.size() == 1);
    CHECK(requests[0].path == "/service/r2/addbatchstatus.jsp");
    CHECK(requests[0].statuses == 10);
    CHECK(up->run_until([&] { return up->client->snapshot().backlog == 1; }));
}

TEST_CASE("a 401 stops the uploads and shows in red on the status page", "[pvoutput]") {
    test::FakePvoutput pvoutput(kKey);
    Uploader up(pvoutput.url());
    up.client.reset();
    up.start_client(pvoutput.url(), "wrong-key");
    up.point("2026-06-02T10:00:00", 500, 10.0);
    up.point("2026-06-02T10:05:00", 600, 10.1);
    up.clock.set({2026, 6, 2, 10, 10, 0});
    REQUIRE(up.run_until([&] { return up.client->snapshot().stopped; }));
    up.run_for(100ms);
    CHECK(pvoutput.requests().size() == 1); // no retrying
    const auto snapshot = up.client->snapshot();
    CHECK(snapshot.state == "stopped");
    CHECK(snapshot.last_error == "Unauthorized 401: Invalid API Key");
    CHECK_THAT(up.log_text.str(),
               Catch::Contains("pvoutput_refused") && Catch::Contains("--pvoutput-api-key"));
    CHECK(up.log_text.str().find("wrong-key") == std::string::npos);
    StatusSnapshot status;
    status.pvoutput = snapshot;
    const auto json = status_json(status);
    CHECK(json["pvoutput"]["stopped"] == true);
    CHECK(json.dump().find("wrong-key") == std::string::npos);
    const auto page = status_page(status, "", "n");
    CHECK_THAT(page,
               Catch::Contains("PVOutput refused the key") && Catch::Contains("pvoutput-check"));
    CHECK_THAT(prometheus_metrics(status), Catch::Contains("ecu2mqtt_pvoutput_stopped 1"));
}

TEST_CASE("a system PVOutput refuses (401) stops alone; the other system keeps sending",
          "[pvoutput]") {
    test::FakePvoutput pvoutput(kKey);
    pvoutput.refuse_system("222");
    Uploader up(pvoutput.url());
    PvoutputMapping two;
    two.system_of = {{"216000000001", "111"}, {"216000000002", "222"}};
    up.remap(two, pvoutput.url());
    up.clock.set({2026, 6, 2, 10, 30, 0});
    for (int minute = 600; minute <= 610; minute += 5)
        for (const auto* ecu : {"216000000001", "216000000002"})
            up.point("2026-06-02T" + hhmm(minute) + ":00", minute, minute / 100.0, ecu);
    REQUIRE(up.run_until([&] { return up.client->snapshot().refused_systems.contains("222"); }));
    REQUIRE(up.run_until([&] { return pvoutput.statuses().size() == 2; })); // 111's 10:00, 10:05
    // Later statuses of the good system still go.
    for (int minute = 615; minute <= 625; minute += 5)
        for (const auto* ecu : {"216000000001", "216000000002"})
            up.point("2026-06-02T" + hhmm(minute) + ":00", minute, minute / 100.0, ecu);
    REQUIRE(up.run_until([&] { return pvoutput.statuses().size() == 5; }));
    for (const auto& [key, status] : pvoutput.statuses())
        CHECK(status.system == "111");
    std::size_t to_222 = 0;
    for (const auto& request : pvoutput.requests())
        to_222 += request.system == "222" ? 1 : 0;
    CHECK(to_222 == 1); // no retrying the refused system
    const auto snapshot = up.client->snapshot();
    CHECK_FALSE(snapshot.stopped);
    CHECK(snapshot.state != "stopped");
    CHECK(snapshot.refused_systems.at("222") == "Unauthorized 401: Invalid System ID");
    CHECK_THAT(up.log_text.str(), Catch::Contains("event=pvoutput_refused system=222 status=401") &&
                                      Catch::Contains("--pvoutput-systems"));
    StatusSnapshot status;
    status.pvoutput = snapshot;
    CHECK(status_json(status)["pvoutput"]["refused_systems"][0]["system"] == "222");
    CHECK_THAT(status_page(status, "", "n"), Catch::Contains("PVOutput refused system "));
    CHECK_THAT(prometheus_metrics(status),
               Catch::Contains("ecu2mqtt_pvoutput_system_refused{system=\"222\"} 1") &&
                   Catch::Contains("ecu2mqtt_pvoutput_stopped 0"));
}

TEST_CASE("a 400 for every status holds the system's backlog instead of rejecting it, paced",
          "[pvoutput]") {
    test::FakePvoutput pvoutput(kKey);
    pvoutput.refuse_everything("Bad request 400: Moon Powered");
    Uploader up(pvoutput.url());
    up.client.reset(); // the statuses queue up first
    for (int minute = 600; minute <= 620; minute += 5)
        up.point("2026-06-02T" + hhmm(minute) + ":00", minute, minute / 100.0);
    const auto start = to_epoch_seconds({2026, 6, 2, 12, 0, 0});
    up.clock.set(from_epoch_seconds(start));
    up.start_client(pvoutput.url());
    REQUIRE(up.run_until([&] { return pvoutput.requests().size() == 1; })); // the batch
    up.run_for(100ms);
    CHECK(pvoutput.requests().size() == 1); // the singles wait their turn: 300/h, one per 12 s
    up.clock.set(from_epoch_seconds(start + 12));
    REQUIRE(up.run_until([&] { return pvoutput.requests().size() == 2; })); // the oldest alone
    up.run_for(100ms);
    CHECK(pvoutput.requests().size() == 2);
    up.clock.set(from_epoch_seconds(start + 24));
    REQUIRE(up.run_until([&] { return pvoutput.requests().size() == 3; })); // the newest alone
    REQUIRE(up.run_until([&] { return up.client->snapshot().state == "held"; }));
    up.clock.set(from_epoch_seconds(start + 30 * 60));
    up.run_for(100ms);
    CHECK(pvoutput.requests().size() == 3); // held: no status is refused one after the other
    const auto requests = pvoutput.requests();
    CHECK(requests[0].statuses == 4);
    CHECK(requests[1].first == "20260602 10:00");
    CHECK(requests[2].first == "20260602 10:15");
    auto snapshot = up.client->snapshot();
    CHECK(snapshot.rejected == 0);
    CHECK(snapshot.backlog == 5);
    CHECK_THAT(snapshot.last_error, Catch::Contains("Moon Powered"));
    std::istringstream log(up.log_text.str());
    std::size_t warnings = 0;
    for (std::string line; std::getline(log, line);)
        if (line.find("level=warn") != std::string::npos &&
            line.find("Moon Powered") != std::string::npos)
            ++warnings;
    CHECK(warnings == 1); // the reason once, not once per status

    // Fixed on PVOutput: within the hour, the whole backlog goes, none lost.
    pvoutput.refuse_everything("");
    up.clock.set(from_epoch_seconds(start + 3600 + 30));
    REQUIRE(up.run_until([&] { return up.client->snapshot().sent == 4; }));
    CHECK(up.client->snapshot().rejected == 0);
    CHECK(pvoutput.statuses().size() == 4);
}

TEST_CASE("statuses refused for one cause of the system, each with its own values in the "
          "reason, hold the system instead of being rejected one by one",
          "[pvoutput]") {
    test::FakePvoutput pvoutput(kKey);
    pvoutput.refuse_everything(
        "Bad request 400: Power value [{power}] too high for system size [1000]");
    Uploader up(pvoutput.url());
    up.client.reset();
    for (int minute = 600; minute <= 620; minute += 5)
        up.point("2026-06-02T" + hhmm(minute) + ":00", minute, minute / 100.0);
    auto now = to_epoch_seconds({2026, 6, 2, 12, 0, 0});
    up.clock.set(from_epoch_seconds(now));
    up.start_client(pvoutput.url());
    // The uploader's clock moves a second at a time until the next request comes, whenever
    // the reply before it was handled: the pacing itself is the test above's.
    const auto request_comes = [&](std::size_t count) {
        return up.run_until([&] {
            if (pvoutput.requests().size() >= count)
                return true;
            up.clock.set(from_epoch_seconds(++now));
            return false;
        });
    };
    REQUIRE(request_comes(1)); // the batch
    REQUIRE(request_comes(2)); // the oldest alone
    REQUIRE(request_comes(3)); // the newest alone
    REQUIRE(up.run_until([&] { return up.client->snapshot().state == "held"; }));
    CHECK(pvoutput.requests().size() == 3);
    const auto requests = pvoutput.requests();
    CHECK(requests[1].first == "20260602 10:00");
    CHECK(requests[2].first == "20260602 10:15");
    CHECK(up.client->snapshot().rejected == 0);
    CHECK(up.client->snapshot().backlog == 5);
}

TEST_CASE("a 400 for a batch with one bad status: only that status, refused alone, is rejected",
          "[pvoutput]") {
    test::FakePvoutput pvoutput(kKey);
    pvoutput.refuse_batches_with_refused_status(true);
    pvoutput.refuse_status("20260602", "10:05");
    Uploader up(pvoutput.url());
    up.client.reset();
    for (int minute = 600; minute <= 625; minute += 5)
        up.point("2026-06-02T" + hhmm(minute) + ":00", minute, minute / 100.0);
    auto now = to_epoch_seconds({2026, 6, 2, 12, 0, 0});
    up.clock.set(from_epoch_seconds(now));
    up.start_client(pvoutput.url());
    // Each step waits for the pace (12 s at 300 requests an hour) on the uploader's clock.
    REQUIRE(up.run_until([&] {
        up.clock.set(from_epoch_seconds(now += 13));
        return up.client->snapshot().sent == 4;
    }));
    const auto snapshot = up.client->snapshot();
    CHECK(snapshot.rejected == 1);
    PvoutputQueue queue(Store::file_in(up.dir.path));
    for (const auto& row : queue.rows(10))
        if (row.slot == "2026-06-02T10:05")
            CHECK(row.state == PvoutputRowState::Rejected);
    CHECK(pvoutput.statuses().size() == 4);
}

TEST_CASE("two bad statuses refused for the same reason do not hold the rest for good",
          "[pvoutput]") {
    test::FakePvoutput pvoutput(kKey);
    pvoutput.refuse_batches_with_refused_status(true);
    pvoutput.refuse_status("20260602", "10:00");
    pvoutput.refuse_status("20260602", "12:25"); // the 30th: the last of the first batch
    Uploader up(pvoutput.url());
    up.client.reset();
    for (int minute = 600; minute <= 775; minute += 5) // 36 slots, the newest still open
        up.point("2026-06-02T" + hhmm(minute) + ":00", minute, minute / 100.0);
    auto now = to_epoch_seconds({2026, 6, 2, 14, 0, 0});
    up.clock.set(from_epoch_seconds(now));
    up.start_client(pvoutput.url());
    REQUIRE(up.run_until([&] {
        up.clock.set(from_epoch_seconds(now += 13));
        return up.client->snapshot().sent == 33;
    }));
    CHECK(up.client->snapshot().rejected == 2);
    CHECK(up.client->snapshot().state != "held");
}

TEST_CASE("a named ECU that falls silent: after 30 minutes its system sends the others' sum, and "
          "says so once",
          "[pvoutput]") {
    test::FakePvoutput pvoutput(kKey);
    Uploader up(pvoutput.url());
    PvoutputMapping both;
    both.system_of = {{"216000000001", "111"}, {"216000000002", "111"}};
    up.remap(both, pvoutput.url());
    up.clock.set({2026, 6, 2, 12, 0, 0});
    for (int minute = 600; minute <= 610; minute += 5) {
        up.point("2026-06-02T" + hhmm(minute) + ":00", 100, 10 + minute / 1000.0, "216000000001");
        up.point("2026-06-02T" + hhmm(minute) + ":30", 50, 20 + minute / 1000.0, "216000000002");
    }
    // 216000000002 is silent from 10:15 on.
    for (int minute = 615; minute <= 670; minute += 5)
        up.point("2026-06-02T" + hhmm(minute) + ":00", minute, 10 + minute / 1000.0,
                 "216000000001");
    up.clock.set({2026, 6, 2, 12, 5, 0});
    // Every slot but the newest (11:10) goes, the silent one's with the others' power alone.
    REQUIRE(up.run_until([&] { return pvoutput.statuses().size() == 14; }));
    const auto statuses = pvoutput.statuses();
    CHECK(statuses.at("111 20260602 10:05").v2 == 150);
    CHECK(statuses.at("111 20260602 10:50").v2 == 650);
    // The counter keeps the silent ECU's part where it stopped (10 Wh between 10:00 and 10:10).
    CHECK(statuses.at("111 20260602 10:50").v1 == std::llround((10 + 650 / 1000.0) * 1000 + 10));
    REQUIRE(up.run_until([&] { return !up.client->snapshot().silent_ecus.empty(); }));
    const auto silent = up.client->snapshot().silent_ecus;
    REQUIRE(silent.size() == 1);
    CHECK(silent[0].ecu_id == "216000000002");
    CHECK(silent[0].system_id == "111");
    CHECK(silent[0].last_slot == "2026-06-02T10:10");
    CHECK(silent[0].slots_without == 12);
    const auto log = up.log_text.str();
    const auto warned = log.find("event=pvoutput_ecu_silent ecu=216000000002 system=111");
    CHECK(warned != std::string::npos);
    up.clock.set({2026, 6, 2, 12, 10, 0});
    up.run_for(50ms);
    CHECK(up.log_text.str().find("event=pvoutput_ecu_silent", warned + 1) == std::string::npos);
    StatusSnapshot status;
    status.pvoutput = up.client->snapshot();
    CHECK(status_json(status)["pvoutput"]["silent_ecus"][0]["ecu"] == "216000000002");
    CHECK_THAT(status_page(status, "", "n"), Catch::Contains("has not reported for PVOutput"));
}

TEST_CASE("a named ECU that never reports (a mistyped id) does not hold its system's statuses",
          "[pvoutput]") {
    test::FakePvoutput pvoutput(kKey);
    Uploader up(pvoutput.url());
    PvoutputMapping both;
    both.system_of = {{"216000000001", "111"}, {"216000000009", "111"}};
    up.remap(both, pvoutput.url());
    up.clock.set({2026, 6, 2, 12, 0, 0});
    for (int minute = 600; minute <= 645; minute += 5)
        up.point("2026-06-02T" + hhmm(minute) + ":00", minute, 10 + minute / 1000.0,
                 "216000000001");
    up.clock.set({2026, 6, 2, 12, 5, 0});
    REQUIRE(up.run_until([&] { return pvoutput.statuses().size() == 9; }));
    REQUIRE(up.run_until([&] { return !up.client->snapshot().silent_ecus.empty(); }));
    CHECK(up.client->snapshot().silent_ecus[0].last_slot.empty());
    CHECK_THAT(up.log_text.str(),
               Catch::Contains("event=pvoutput_ecu_silent ecu=216000000009 system=111") &&
                   Catch::Contains("last_report=never"));
}

TEST_CASE("a day whose statuses change after its addoutput (a late backfill) is sent again",
          "[pvoutput]") {
    test::FakePvoutput pvoutput(kKey);
    Uploader up(pvoutput.url());
    up.clock.set({2026, 6, 3, 6, 1, 0});
    for (int minute = 600; minute <= 630; minute += 5)
        up.point("2026-06-02T" + hhmm(minute) + ":00", minute, minute / 100.0);
    up.point("2026-06-03T06:00:00", 0, 6.5); // the next morning ends the day
    REQUIRE(up.run_until([&] { return pvoutput.outputs().size() == 1; }));
    CHECK_THAT(pvoutput.outputs()[0], Catch::Contains("d=20260602&g=300&pp=630&pt=10:30"));
    // The evening's gap arrives after the morning's first upload.
    for (int minute = 635; minute <= 650; minute += 5)
        up.point("2026-06-02T" + hhmm(minute) + ":00", minute, minute / 100.0);
    REQUIRE(up.run_until([&] { return pvoutput.statuses().size() == 11; }));
    up.run_for(100ms);
    CHECK(pvoutput.outputs().size() == 1); // at most once every 15 minutes
    up.clock.set({2026, 6, 3, 6, 17, 0});
    REQUIRE(up.run_until([&] { return pvoutput.outputs().size() == 2; }));
    CHECK_THAT(pvoutput.outputs()[1], Catch::Contains("d=20260602&g=500&pp=650&pt=10:50"));
    up.clock.set({2026, 6, 3, 7, 0, 0});
    up.run_for(100ms);
    CHECK(pvoutput.outputs().size() == 2); // unchanged since: not again
}

TEST_CASE("an https PVOutput whose certificate is not trusted fails with a named TLS error",
          "[pvoutput]") {
    test::FakePvoutput pvoutput(kKey, test::FakePvoutput::Transport::HttpsSelfSigned);
    Uploader up(pvoutput.url());
    up.point("2026-06-02T10:00:00", 500, 10.0);
    up.point("2026-06-02T10:05:00", 600, 10.1);
    up.clock.set({2026, 6, 2, 10, 10, 0});
    REQUIRE(up.run_until([&] { return !up.client->snapshot().last_error.empty(); }));
    CHECK_THAT(up.client->snapshot().last_error, Catch::StartsWith("TLS: unknown CA"));
    CHECK(pvoutput.statuses().empty());
}

} // namespace test_pvoutput_client
