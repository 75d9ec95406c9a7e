// The upload pipeline with a real store and a publisher that only records what it is handed:
// decisions, commit before answer, the order of uploads of one ECU, the cap. No broker.
#include "ecu2mqtt/app/upload_pipeline.hpp"
#include "ecu2mqtt/mqtt/reading_publisher.hpp"
#include "ecu2mqtt/protocol/decoder.hpp"
#include "ecu2mqtt/store/store.hpp"
#include "support/fixed_clock.hpp"
#include "support/temp_dir.hpp"
#include "support/upload_builder.hpp"

#include "ecu2mqtt/net/asio.hpp"
#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <sstream>

using namespace ecu2mqtt;
using namespace std::chrono_literals;

namespace test_upload_pipeline {
namespace {

// Records what the pipeline hands over, in order; publishes nothing.
class RecordingPublisher final : public ReadingPublisher {
  public:
    struct Reading {
        std::uint64_t sequence = 0;
        std::vector<OutgoingMessage> messages;
    };
    std::vector<std::string> calls; // "reading 1", "describe <id>", "online <id>" ...
    std::vector<Reading> readings;
    std::map<std::string, EcuDevices> described;

    void start() override { calls.push_back("start"); }
    void shutdown(std::chrono::milliseconds) override { calls.push_back("shutdown"); }
    const TopicScheme& topics() const override { return topics_; }
    bool discovery() const override { return true; }
    const std::string& sw_version() const override { return version_; }
    std::uint64_t next_sequence() override { return ++last_sequence_; }
    void reading_committed(std::uint64_t sequence, std::size_t, std::int64_t,
                           std::vector<OutgoingMessage> messages) override {
        calls.push_back("reading " + std::to_string(sequence));
        readings.push_back({sequence, std::move(messages)});
    }
    void describe(const std::string& id, EcuDevices devices) override {
        described[id] = std::move(devices);
    }
    void announce(const std::string& id) override { calls.push_back("announce " + id); }
    void set_online(const std::string& id, bool online) override {
        calls.push_back((online ? "online " : "offline ") + id);
    }
    void forget_inverter(const std::string& id, const std::string& uid, WriteBatch&) override {
        calls.push_back("forget " + id + "/" + uid);
    }
    void forget_ecu(const std::string& id, WriteBatch&) override {
        described.erase(id);
        calls.push_back("forget " + id);
    }
    void put_latest(OutgoingMessage, bool) override {}
    void refresh_bridge_info() override {}
    void publish_queued() override {}
    void on_raw(const std::string&, std::string_view) override {}

  private:
    TopicScheme topics_;
    std::string version_ = "test";
    std::uint64_t last_sequence_ = 0;
};

RealtimeUpload upload_of(const std::string& ecu, const std::string& stamp, long long decikwh) {
    test::UploadSpec spec;
    spec.ecu_id = ecu;
    spec.timestamp = stamp;
    spec.decikwh = decikwh;
    spec.inverters = {test::inverter_with("408000111178", 2, 200)};
    return std::get<RealtimeUpload>(*decoded_message(decode_message(test::build_upload(spec))));
}

struct Bench {
    test::TempDir dir{"ecu2mqtt-pipeline"};
    boost::asio::io_context io;
    std::stringstream log_text;
    Logger log{log_text, LogLevel::Debug};
    test::FixedClock clock{{2024, 2, 6, 11, 22, 30}};
    Store store{Store::file_in(dir.path / "state"), {}, io.get_executor()};
    RecordingPublisher publisher;
    UploadPipeline pipeline;

    explicit Bench(PipelineConfig config = {})
        : pipeline(io, config, publisher, clock, log, &store) {}

    // Hands the upload over and runs the io thread until it is answered.
    UploadHandling upload(const RealtimeUpload& upload) {
        std::optional<UploadHandling> answer;
        pipeline.on_realtime(upload, clock.now(), [&](UploadHandling h) { answer = h; });
        run_until([&] { return answer.has_value(); });
        return *answer;
    }
    template <class Done> void run_until(Done done) {
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (!done() && std::chrono::steady_clock::now() < deadline) {
            io.restart();
            io.run_for(5ms);
        }
        REQUIRE(done());
    }
};

} // namespace

TEST_CASE("pipeline: a live upload is committed with its ledger state before the ECU is "
          "answered, and its messages go to the publisher",
          "[pipeline]") {
    Bench bench;
    std::optional<UploadHandling> answer;
    std::size_t pending_at_answer = 0;
    bool state_at_answer = false;
    bench.pipeline.on_realtime(upload_of("216000064136", "20240206112214", 30000),
                               bench.clock.now(), [&](UploadHandling h) {
                                   pending_at_answer = bench.store.pending_summary().size();
                                   state_at_answer = !bench.store.ecu_states().empty();
                                   answer = h;
                               });
    CHECK(bench.publisher.readings.empty()); // nothing before the commit
    bench.run_until([&] { return answer.has_value(); });

    CHECK(answer->handled);
    CHECK(answer->live);
    CHECK(pending_at_answer == 1);
    CHECK(state_at_answer);
    REQUIRE(bench.publisher.readings.size() == 1);
    const auto& reading = bench.publisher.readings.front();
    CHECK(reading.sequence == 1);
    REQUIRE(reading.messages.size() == 2);
    CHECK(reading.messages[0].topic == "ecu2mqtt/216000064136/408000111178/state");
    CHECK(reading.messages[1].topic == "ecu2mqtt/216000064136/state");
    CHECK(reading.messages[1].retain);
    CHECK(nlohmann::json::parse(reading.messages[1].payload)["lifetime_energy_kwh"] == 3000.0);
    // Its devices are described, then it is online; the configs follow the answer.
    REQUIRE(bench.publisher.described.contains("216000064136"));
    CHECK(bench.publisher.described["216000064136"].inverters.size() == 1);
    bench.run_until([&] {
        return std::find(bench.publisher.calls.begin(), bench.publisher.calls.end(),
                         "announce 216000064136") != bench.publisher.calls.end();
    });
    CHECK(bench.publisher.calls ==
          std::vector<std::string>{"reading 1", "online 216000064136", "announce 216000064136"});
}

TEST_CASE("pipeline: the same upload again is answered as a repeat and not handed over",
          "[pipeline]") {
    Bench bench;
    const auto first = upload_of("216000064136", "20240206112214", 30000);
    CHECK(bench.upload(first).live);
    const auto again = bench.upload(first);
    CHECK(again.handled);
    CHECK(again.duplicate);
    CHECK(bench.publisher.readings.size() == 1);
}

TEST_CASE("pipeline: uploads of one ECU are decided one after another, in the order given",
          "[pipeline]") {
    Bench bench;
    std::vector<std::string> answered;
    for (const auto* stamp : {"20240206112214", "20240206112714", "20240206113214"})
        bench.pipeline.on_realtime(upload_of("216000064136", stamp, 30000), bench.clock.now(),
                                   [&answered, stamp](UploadHandling h) {
                                       if (h.handled && h.live)
                                           answered.push_back(stamp);
                                   });
    bench.run_until([&] { return answered.size() == 3; });
    CHECK(answered ==
          std::vector<std::string>{"20240206112214", "20240206112714", "20240206113214"});
    REQUIRE(bench.publisher.readings.size() == 3);
    CHECK(bench.publisher.readings[2].sequence == 3);
}

TEST_CASE("pipeline: beyond max_ecus an ECU is answered untracked and never described",
          "[pipeline]") {
    PipelineConfig config;
    config.max_ecus = 1;
    Bench bench(config);
    CHECK(bench.upload(upload_of("216000000001", "20240206112214", 30000)).live);
    const auto refused = bench.upload(upload_of("216000000002", "20240206112214", 40000));
    CHECK(refused.untracked);
    CHECK(bench.publisher.described.size() == 1);
    CHECK(bench.publisher.readings.size() == 1);
    CHECK(bench.log_text.str().find("ecu_limit_reached") != std::string::npos);
    CHECK(bench.pipeline.ecus().size() == 1);
}

TEST_CASE("pipeline: an ECU evicted to make room is named to on_ecu_forgotten", "[pipeline]") {
    PipelineConfig config;
    config.max_ecus = 1;
    std::vector<std::string> forgotten;
    config.on_ecu_forgotten = [&](const std::string& id) { forgotten.push_back(id); };
    config.ecu_timeout = 2s; // its check runs every 0.5 s
    Bench bench(config);
    bench.pipeline.start();
    CHECK(bench.upload(upload_of("216000000001", "20240206112214", 30000)).live);
    // Silent past the ECU timeout, with one reading kept: it no longer holds its place.
    bench.clock.set({2024, 2, 6, 11, 52, 30});
    bench.run_until([&] {
        return std::find(bench.publisher.calls.begin(), bench.publisher.calls.end(),
                         "offline 216000000001") != bench.publisher.calls.end();
    });
    CHECK(forgotten.empty());
    CHECK(bench.upload(upload_of("216000000002", "20240206115214", 40000)).live);
    CHECK(forgotten == std::vector<std::string>{"216000000001"});
}

TEST_CASE("pipeline: the status view comes from the registry", "[pipeline]") {
    Bench bench;
    bench.upload(upload_of("216000064136", "20240206112214", 30000));
    const auto views = bench.pipeline.ecus();
    REQUIRE(views.size() == 1);
    CHECK(views[0].ecu_id == "216000064136");
    CHECK(views[0].online);
    REQUIRE(views[0].live);
    CHECK(views[0].live->ecu_timestamp == "2024-02-06T11:22:14");
    CHECK(views[0].live->lifetime_kwh == 3000.0);
}

} // namespace test_upload_pipeline
