// A publisher and the upload pipeline that feeds it on their own io thread, as the service runs
// them, with a clock the test moves.
#pragma once

#include "ecu2mqtt/app/upload_pipeline.hpp"
#include "ecu2mqtt/mqtt/mqtt_publisher.hpp"
#include "ecu2mqtt/net/asio.hpp"
#include "ecu2mqtt/protocol/decoder.hpp"
#include "ecu2mqtt/store/store.hpp"
#include "fixed_clock.hpp"
#include "upload_builder.hpp"

#include <cstdlib>
#include <functional>
#include <future>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>

namespace test {

using namespace std::chrono_literals;
using ecu2mqtt::InverterSpec;

// The publisher's settings and the pipeline's, as one (the command line sets both).
struct PublisherSettings : ecu2mqtt::PublisherConfig, ecu2mqtt::PipelineConfig {};

class RunningPublisher {
  public:
    // Changes a test makes to the settings below before the publisher starts.
    using Adjust = std::function<void(PublisherSettings&, ecu2mqtt::StoreLimits&)>;

    RunningPublisher(const std::string& url, const std::filesystem::path& state_dir,
                     FixedClock& clock, const Adjust& adjust = {})
        : clock_(clock), log_(log_text_, ecu2mqtt::LogLevel::Debug) {
        PublisherSettings config;
        config.url = url;
        config.client_id = "ecu2mqtt-" + std::to_string(++instances());
        config.ecu_timeout = 1s; // the periodic checks run every 250 ms then
        config.forget_inverter_after = std::chrono::days(30);
        config.discovery_audit_wait = 500ms;
        config.sw_version = "test";
        ecu2mqtt::StoreLimits store_limits;
        if (adjust)
            adjust(config, store_limits);
        store_ = std::make_unique<ecu2mqtt::Store>(ecu2mqtt::Store::file_in(state_dir),
                                                   store_limits, io_.get_executor());
        publisher_ = std::make_unique<ecu2mqtt::MqttPublisher>(
            io_, static_cast<const ecu2mqtt::PublisherConfig&>(config), log_, store_.get());
        pipeline_ = std::make_unique<ecu2mqtt::UploadPipeline>(
            io_, static_cast<const ecu2mqtt::PipelineConfig&>(config), *publisher_, clock_, log_,
            store_.get());
        pipeline_->start();
        std::promise<void> stopped;
        stopped_ = stopped.get_future();
        runner_ = std::thread([this, stopped = std::move(stopped)]() mutable {
            io_.run();
            stopped.set_value();
        });
    }
    // A publisher that does not stop ends the test run with its log, rather than hanging until
    // CTest's time limit kills it without a word.
    ~RunningPublisher() {
        boost::asio::post(io_, [this] { pipeline_->shutdown(300ms); });
        work_.reset();
        if (stopped_.wait_for(kHandOffLimit) != std::future_status::ready) {
            std::cerr << "RunningPublisher: the publisher did not stop within "
                      << kHandOffLimit.count() << " s after shutdown; its log:\n"
                      << log() << std::endl;
            std::abort();
        }
        runner_.join();
    }

    void upload(const std::string& timestamp, const std::vector<InverterSpec>& inverters,
                long long decikwh = 30000) {
        UploadSpec spec;
        spec.timestamp = timestamp;
        spec.decikwh = decikwh;
        spec.inverters = inverters;
        upload(spec);
    }
    // Hands the upload to the publisher and waits for its handling, as the service would.
    ecu2mqtt::UploadHandling upload(const UploadSpec& spec) { return upload(build_upload(spec)); }
    // The same for an upload as the ECU sends it (the simulator's, say).
    ecu2mqtt::UploadHandling upload(const std::string& message) {
        const auto decoded = std::get<ecu2mqtt::RealtimeUpload>(
            *ecu2mqtt::decoded_message(ecu2mqtt::decode_message(message)));
        auto done = std::make_shared<std::promise<ecu2mqtt::UploadHandling>>();
        auto handled = done->get_future();
        boost::asio::post(io_, [this, decoded, done] {
            pipeline_->on_realtime(
                decoded, clock_.now(),
                [done](ecu2mqtt::UploadHandling handling) { done->set_value(handling); });
        });
        return awaited(std::move(handled), "handle an upload");
    }

    // What a poll of the ECU's port 8899 found, handed over as the poller does, on the io thread.
    void polled(const std::string& ecu_id, const ecu2mqtt::PolledEcuFacts& facts,
                std::shared_ptr<const ecu2mqtt::TimeZone> zone = nullptr) {
        auto done = std::make_shared<std::promise<void>>();
        auto handed = done->get_future();
        boost::asio::post(io_, [this, ecu_id, facts, zone, done] {
            pipeline_->on_polled(ecu_id, facts, zone);
            done->set_value();
        });
        awaited(std::move(handed), "take a poll's facts");
    }

    std::string log() const { return log_text_.str(); }

  private:
    static constexpr std::chrono::seconds kHandOffLimit{60};

    // The hand-off's result, or a failure that says what did not happen, with the log.
    template <typename T> T awaited(std::future<T> result, const std::string& what) {
        if (result.wait_for(kHandOffLimit) != std::future_status::ready)
            throw std::runtime_error("the publisher did not " + what + " within " +
                                     std::to_string(kHandOffLimit.count()) + " s; its log:\n" +
                                     log());
        return result.get();
    }

    static int& instances() {
        static int n = 0;
        return n;
    }
    FixedClock& clock_;
    std::stringstream log_text_;
    ecu2mqtt::Logger log_;
    boost::asio::io_context io_;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ =
        boost::asio::make_work_guard(io_);
    std::unique_ptr<ecu2mqtt::Store> store_;
    std::unique_ptr<ecu2mqtt::MqttPublisher> publisher_;
    std::unique_ptr<ecu2mqtt::UploadPipeline> pipeline_; // fed by the test, feeds the publisher
    std::future<void> stopped_;
    std::thread runner_;
};

} // namespace test
