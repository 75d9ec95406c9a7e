// A state directory on a small file system that fills up, with the real binary, a real broker
// and an ECU that re-sends what the reply asks for: nothing it sends again is lost for good.
#include "support/http_client.hpp"
#include "support/mqtt_probe.hpp"
#include "support/service_process.hpp"
#include "support/store_probe.hpp"
#include "support/temp_dir.hpp"
#include "support/test_paths.hpp"
#include "support/tmpfs.hpp"
#include "support/upload_builder.hpp"

#include "ecu2mqtt/protocol/local_time.hpp"

#include <catch2/catch.hpp>
#include <ctime>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>

using namespace std::chrono_literals;
using nlohmann::json;

namespace test_disk_full {
namespace {

constexpr std::int64_t kPeriodS = 300; // an ECU uploads every five minutes

std::int64_t now_utc_s() {
    return static_cast<std::int64_t>(std::time(nullptr));
}

// One ECU with 25 QS1, its clock an hour behind the host's (TZ=UTC for the service). Its
// readings are five minutes apart by its clock, sent as fast as the service answers. As the
// project's simulator does, it re-sends what follows the time a reply names when that is older
// than the upload's own time less five minutes, oldest first, then its newest reading again.
class ResendingEcu {
  public:
    explicit ResendingEcu(std::uint16_t port)
        : port_(port), first_(ecu2mqtt::from_epoch_seconds((now_utc_s() - 3600) / 60 * 60)) {}

    std::string stamp(int i) const {
        return ecu2mqtt::format_compact(ecu2mqtt::add_seconds(first_, i * kPeriodS));
    }
    // As the history and the state topic write it.
    std::string iso(int i) const {
        return ecu2mqtt::format_iso(ecu2mqtt::add_seconds(first_, i * kPeriodS));
    }

    // Uploads reading `i`, then re-sends as its reply asks; `before_resend(n)` runs before the
    // n-th message sent again (from 0).
    void cycle(int i, const std::function<void(int)>& before_resend = {}) {
        const std::string reply = send(i);
        const int named = index_named(reply);
        if (named >= i - 1)
            return; // the normal answer: nothing is missing
        int n = 0;
        for (int again = named + 1; again <= i; ++again) {
            if (before_resend)
                before_resend(n);
            ++n;
            asked_for_.insert(again);
            send(again);
        }
    }

    const std::set<int>& asked_for() const { return asked_for_; }
    const std::string& last_reply() const { return last_reply_; }

  private:
    std::string message(int i) const {
        ecu2mqtt::UploadSpec spec;
        spec.ecu_id = "216000000025";
        spec.timestamp = stamp(i);
        spec.decikwh = 100000 + i;
        for (int q = 0; q < 25; ++q)
            spec.inverters.push_back(
                test::inverter_with("8060000" + test::zero_padded(q, 5), 4, 60 + i));
        spec.centiwatts = 25 * 4 * (60 + i) * 100;
        return test::build_upload(spec);
    }

    std::string send(int i) {
        last_reply_ = test::slow_upload(port_, message(i));
        REQUIRE(last_reply_.size() == 17);
        return last_reply_;
    }

    // The reading a reply names: "101" and a time, which the ECU has everything up to.
    int index_named(const std::string& reply) const {
        const auto named = ecu2mqtt::parse_compact_timestamp(reply.substr(3));
        REQUIRE(named);
        const auto seconds =
            ecu2mqtt::to_epoch_seconds(*named) - ecu2mqtt::to_epoch_seconds(first_);
        return static_cast<int>((seconds + 10 * kPeriodS) / kPeriodS) - 10; // rounded down
    }

    std::uint16_t port_;
    ecu2mqtt::LocalDateTime first_;
    std::set<int> asked_for_;
    std::string last_reply_;
};

struct Bench {
    explicit Bench(std::size_t bytes, std::vector<std::string> extra = {}) {
        std::string why;
        tmpfs = test::Tmpfs::mount(dir.path / "state", bytes, why);
        if (!tmpfs) {
            skipped = why;
            return;
        }
        http_port = test::free_port();
        args = std::move(extra);
        args.insert(args.end(), {"--http-listen", "127.0.0.1:" + std::to_string(http_port)});
        start();
    }
    ~Bench() { service.reset(); } // before the file system goes

    void start() {
        service = std::make_unique<test::ServiceProcess>(broker.url(), state(), args);
        REQUIRE(service->process().wait_for_output("event=mqtt_connected", 5s));
    }
    std::filesystem::path state() const { return dir.path / "state"; }

    json status() const {
        const auto answer = test::http_get(http_port, "/api/status");
        REQUIRE(answer.status == 200);
        return json::parse(answer.body);
    }
    // The ECU's clock offset as the service has learned it (what /api/status shows).
    json clock_offset() const {
        const auto now = status();
        for (const auto& ecu : now["ecus"])
            if (ecu["id"] == "216000000025")
                return ecu["clock_offset_s"];
        return nullptr;
    }
    std::vector<std::string> history() const {
        std::vector<std::string> times;
        for (const auto& row :
             test::query_rows(state(), "SELECT ecu_time FROM power_points ORDER BY ecu_time", 1))
            times.push_back(row[0]);
        return times;
    }
    json gaps() const {
        const auto rows = test::query_rows(state(), "SELECT state FROM ecu_state", 1);
        REQUIRE(rows.size() == 1);
        return json::parse(rows[0][0])["gaps"];
    }

    test::TempDir dir;
    std::unique_ptr<test::Tmpfs> tmpfs;
    std::string skipped;
    test::MosquittoBroker broker;
    std::uint16_t http_port = 0;
    std::vector<std::string> args;
    std::unique_ptr<test::ServiceProcess> service;
};

// Reading `i` of one ECU with 25 QS1 uploading every minute by its clock, an hour behind.
std::string minute_upload(const ecu2mqtt::LocalDateTime& first, int i) {
    ecu2mqtt::UploadSpec spec;
    spec.ecu_id = "216000000025";
    spec.timestamp = ecu2mqtt::format_compact(ecu2mqtt::add_seconds(first, i * 60));
    spec.decikwh = 100000 + i;
    for (int q = 0; q < 25; ++q)
        spec.inverters.push_back(
            test::inverter_with("8060000" + test::zero_padded(q, 5), 4, 60 + i % 7));
    return test::build_upload(spec);
}

// What the service answers to it once it is kept: its time less five minutes.
std::string normal_reply(const ecu2mqtt::LocalDateTime& first, int i) {
    return "101" + ecu2mqtt::format_compact(ecu2mqtt::add_seconds(first, i * 60 - kPeriodS));
}

enum class SpaceBack { BeforeUpload, BetweenReplyAndResends, MidBatch };

// Readings 0-2 kept, 3-7 sent while the disk is full, the space back during the exchange of
// reading 8 (at `when`), then reading 9 and its re-sends.
void lose_and_recover(SpaceBack when) {
    Bench bench(16 << 20);
    if (!bench.tmpfs) {
        WARN("skipped: " << bench.skipped);
        return;
    }
    ResendingEcu ecu(bench.service->port());
    for (int i = 0; i <= 2; ++i)
        ecu.cycle(i);
    REQUIRE(bench.history().size() == 3);
    const json offset = bench.clock_offset();
    REQUIRE(offset.is_number());

    auto filler = std::make_unique<test::DiskFiller>(bench.state() / "filler");
    for (int i = 3; i <= 7; ++i) {
        ecu.cycle(i);
        CHECK(ecu.last_reply() == "101" + ecu.stamp(2)); // asks from the last reading kept
        CHECK(bench.clock_offset() == offset);
    }
    CHECK_THAT(bench.service->log(), Catch::Contains("event=store_write_failed"));
    CHECK(bench.status()["store"]["failed_writes"] > 0);

    const auto free_space = [&filler] { filler.reset(); };
    switch (when) {
    case SpaceBack::BeforeUpload:
        free_space();
        ecu.cycle(8);
        break;
    case SpaceBack::BetweenReplyAndResends:
        ecu.cycle(8, [&](int n) {
            if (n == 0)
                free_space();
        });
        break;
    case SpaceBack::MidBatch:
        ecu.cycle(8, [&](int n) {
            if (n == 2) // readings 3 and 4 were sent again, and lost again
                free_space();
        });
        break;
    }
    CHECK(bench.clock_offset() == offset);
    ecu.cycle(9);
    CHECK(ecu.last_reply() == "101" + ecu.stamp(8)); // the normal answer: nothing missing

    for (int lost = 3; lost <= 7; ++lost)
        CHECK(ecu.asked_for().contains(lost));
    std::vector<std::string> expected;
    for (int i = 0; i <= 9; ++i)
        expected.push_back(ecu.iso(i));
    CHECK(test::wait_for_number(bench.state(), "SELECT count(*) FROM power_points", 10) == 10);
    CHECK(bench.history() == expected);
    CHECK(bench.gaps() == json::array());
    CHECK(bench.clock_offset() == offset);
    CHECK(bench.status()["store"]["writable"] == true);
    CHECK_THAT(bench.service->log(), !Catch::Contains("event=upload_clock_suspect"));
    CHECK_THAT(bench.service->log(), !Catch::Contains("event=ecu_clock_offset_changed"));
    // The newest reading is the live state at the broker. It is published after its commit, so
    // it may still be on its way: a late subscriber once it is there gets it retained.
    const std::string topic = "ecu2mqtt/216000000025/state";
    test::MqttProbe probe(bench.broker.url(), topic);
    REQUIRE(probe.wait_for_payload(
        topic, [&](const std::string& p) { return json::parse(p)["timestamp"] == ecu.iso(9); },
        15s));
    test::MqttProbe late(bench.broker.url(), topic, "late");
    const auto state = late.wait_for_topic(topic);
    REQUIRE(state);
    CHECK(state->retained);
    CHECK(json::parse(state->payload)["timestamp"] == ecu.iso(9));
}

} // namespace

TEST_CASE("disk full: the space is back before the next upload, and every lost reading is kept",
          "[diskfull]") {
    lose_and_recover(SpaceBack::BeforeUpload);
}

TEST_CASE("disk full: the space is back between a reply and the re-sends it asked for",
          "[diskfull]") {
    lose_and_recover(SpaceBack::BetweenReplyAndResends);
}

TEST_CASE("disk full: the space is back in the middle of the re-sends", "[diskfull]") {
    lose_and_recover(SpaceBack::MidBatch);
}

TEST_CASE("a state directory of 2 MiB keeps every upload, and warns that space is low",
          "[diskfull]") {
    Bench bench(2 << 20);
    if (!bench.tmpfs) {
        WARN("skipped: " << bench.skipped);
        return;
    }
    // One ECU with 25 QS1, an upload a minute by its clock: more than SQLite's write-ahead log
    // would ever leave room for if it were folded into the database only at its usual 4 MB.
    const auto first = ecu2mqtt::from_epoch_seconds((now_utc_s() - 3600) / 60 * 60);
    const int uploads = 80;
    for (int i = 0; i < uploads; ++i) {
        INFO("upload " << i);
        REQUIRE(test::slow_upload(bench.service->port(), minute_upload(first, i)) ==
                normal_reply(first, i));
    }
    CHECK(test::wait_for_number(bench.state(), "SELECT count(*) FROM power_points", uploads) ==
          uploads);
    CHECK_THAT(bench.service->log(), !Catch::Contains("event=store_write_failed"));

    const auto store = bench.status()["store"];
    CHECK(store["writable"] == true);
    CHECK(store["low_space"] == true);
    CHECK(store["low_space_bytes"] == 64 << 20);
    REQUIRE(store["free_bytes"].is_number());
    CHECK(store["free_bytes"].get<std::int64_t>() < (2 << 20));
    const auto metrics = test::http_get(bench.http_port, "/metrics").body;
    CHECK_THAT(metrics, Catch::Contains("\necu2mqtt_store_free_bytes "));
    CHECK_THAT(metrics, Catch::Contains("\necu2mqtt_store_low_space_bytes 67108864"));
}

TEST_CASE("on a full disk the heartbeat is still written", "[diskfull]") {
    Bench bench(1 << 20);
    if (!bench.tmpfs) {
        WARN("skipped: " << bench.skipped);
        return;
    }
    const auto heartbeat = (bench.state() / "heartbeat.json").string();
    const auto beat_time = [&heartbeat]() -> std::int64_t {
        try {
            return json::parse(test::read_file(heartbeat))["time"].get<std::int64_t>();
        } catch (const json::exception&) {
            return 0; // caught while it was being written
        }
    };
    const auto written = std::chrono::steady_clock::now() + 2s; // at start, after "ready"
    while (beat_time() == 0 && std::chrono::steady_clock::now() < written)
        std::this_thread::sleep_for(10ms);
    test::DiskFiller filler(bench.state() / "filler");
    const auto before = beat_time();
    REQUIRE(before > 0);
    // Written every 10 s: the next one comes within 11 s.
    const auto deadline = std::chrono::steady_clock::now() + 11s;
    auto time = before;
    while (time <= before && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(100ms);
        time = beat_time();
    }
    CHECK(time > before);
    CHECK_THAT(bench.service->log(), !Catch::Contains("event=heartbeat_not_written"));
    CHECK(bench.service->process().running());
}

} // namespace test_disk_full
