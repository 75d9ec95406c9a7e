// A stand-in PVOutput on a free loopback port, over HTTP or HTTPS (a certificate made with the
// openssl command for each test), that follows the documented API (r2): it checks the key
// header, takes addstatus, addbatchstatus (at most `batch_limit` statuses) and addoutput, answers
// per status, sends the rate-limit headers, and can be down, rate-limited or refuse statuses.
#pragma once

#include "temp_dir.hpp"

#include "ecu2mqtt/net/asio.hpp"
#include <algorithm>
#include <atomic>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace test {

class FakePvoutput {
  public:
    enum class Transport { Http, HttpsSelfSigned };

    struct Status {
        std::string system;
        std::string date; // yyyymmdd
        std::string time; // hh:mm
        long long v1 = 0;
        long long v2 = 0;
        bool cumulative = false; // c1=2
    };
    struct Request {
        std::string path;
        std::string system;
        std::size_t statuses = 0;
        std::string first; // "yyyymmdd hh:mm" of the first status
    };

    explicit FakePvoutput(std::string key, Transport transport = Transport::Http)
        : key_(std::move(key)), tls_(transport == Transport::HttpsSelfSigned),
          context_(boost::asio::ssl::context::tls_server),
          acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
        if (tls_) {
            dir_ = std::make_unique<TempDir>("ecu2mqtt-pvo-tls");
            const std::string command =
                "cd '" + dir_->path.string() +
                "' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                "-keyout server.key -out server.pem -days 30 -subj '/CN=127.0.0.1' -addext "
                "'subjectAltName=IP:127.0.0.1' >openssl.log 2>&1";
            if (std::system(command.c_str()) != 0)
                throw std::runtime_error("openssl failed in " + dir_->path.string());
            context_.use_certificate_chain_file((dir_->path / "server.pem").string());
            context_.use_private_key_file((dir_->path / "server.key").string(),
                                          boost::asio::ssl::context::pem);
        }
        thread_ = std::thread([this] { serve(); });
    }
    ~FakePvoutput() {
        stopping_ = true;
        boost::system::error_code ignored;
        boost::asio::io_context wake_io;
        boost::asio::ip::tcp::socket wake(wake_io);
        wake.connect(acceptor_.local_endpoint(), ignored); // unblocks accept()
        thread_.join();
    }
    FakePvoutput(const FakePvoutput&) = delete;
    FakePvoutput& operator=(const FakePvoutput&) = delete;

    std::string url() const {
        return std::string(tls_ ? "https" : "http") +
               "://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
    }

    // What it does with the next requests.
    void set_down(bool down) {
        with_lock([&] { down_ = down; });
    }
    void set_hang(bool hang) {
        with_lock([&] { hang_ = hang; });
    }
    void set_rate_limited_until(long long reset_unix) {
        with_lock([&] { rate_limited_until_ = reset_unix; });
    }
    void refuse_status(std::string date, std::string time) {
        with_lock([&] { refused_.insert(date + " " + time); });
    }
    // Every request with this system id is answered 401, as PVOutput answers an id that is not
    // the key's.
    void refuse_system(std::string system) {
        with_lock([&] { refused_systems_.insert(system); });
    }
    // Every addstatus and addbatchstatus is answered 400 with this reason (none when empty), as
    // PVOutput answers a system whose size is set too small ("Moon Powered"). "{power}" in it
    // becomes the (first) status's power, as PVOutput names the values it refuses.
    void refuse_everything(std::string reason) {
        with_lock([&] { refuse_all_ = reason; });
    }
    // A batch holding a refused status is answered 400 as a whole, not per status.
    void refuse_batches_with_refused_status(bool whole) {
        with_lock([&] { refuse_whole_batch_ = whole; });
    }
    // The batch reply leaves this status out, as neither added nor refused.
    void leave_out_of_reply(std::string date, std::string time) {
        with_lock([&] { unnamed_.insert(date + " " + time); });
    }

    std::map<std::string, Status> statuses() { // by "system yyyymmdd hh:mm"
        std::lock_guard lock(mutex_);
        return statuses_;
    }
    std::vector<Request> requests() {
        std::lock_guard lock(mutex_);
        return requests_;
    }
    std::vector<std::string> outputs() {
        std::lock_guard lock(mutex_);
        return outputs_;
    }
    std::size_t hung() {
        std::lock_guard lock(mutex_);
        return hung_;
    }
    // Keys seen in a URL (never wanted) or requests not POST.
    std::vector<std::string> misuse() {
        std::lock_guard lock(mutex_);
        return misuse_;
    }

  private:
    using Reply = boost::beast::http::response<boost::beast::http::string_body>;

    template <typename F> void with_lock(F f) {
        std::lock_guard lock(mutex_);
        f();
    }

    void serve() {
        for (;;) {
            boost::asio::ip::tcp::socket socket(io_);
            boost::system::error_code ec;
            acceptor_.accept(socket, ec);
            if (stopping_)
                return;
            if (ec)
                continue;
            if (!tls_) {
                handle(socket);
                continue;
            }
            boost::asio::ssl::stream<boost::asio::ip::tcp::socket&> stream(socket, context_);
            stream.handshake(boost::asio::ssl::stream_base::server, ec);
            if (!ec)
                handle(stream);
        }
    }

    template <typename Stream> void handle(Stream& stream) {
        namespace http = boost::beast::http;
        boost::beast::flat_buffer buffer;
        http::request<http::string_body> request;
        boost::system::error_code ec;
        http::read(stream, buffer, request, ec);
        if (ec)
            return;
        Reply reply{http::status::ok, 11};
        bool hang = false;
        {
            std::lock_guard lock(mutex_);
            if (down_)
                return; // hangs up without an answer
            hang = hang_;
            if (hang)
                ++hung_;
            else
                answer(request, reply);
        }
        if (hang) { // keeps the connection until the client goes (the service is killed)
            char byte;
            stream.read_some(boost::asio::buffer(&byte, 1), ec);
            return;
        }
        reply.prepare_payload();
        http::write(stream, reply, ec);
    }

    static std::map<std::string, std::string> form(const std::string& body) {
        std::map<std::string, std::string> fields;
        std::size_t start = 0;
        while (start < body.size()) {
            const auto end = std::min(body.find('&', start), body.size());
            const auto item = body.substr(start, end - start);
            const auto eq = item.find('=');
            fields[item.substr(0, eq)] = eq == std::string::npos ? "" : item.substr(eq + 1);
            start = end + 1;
        }
        return fields;
    }

    // Called with the lock held.
    template <typename HttpRequest> void answer(const HttpRequest& request, Reply& reply) {
        namespace http = boost::beast::http;
        const std::string path(request.target());
        const std::string system(request["X-Pvoutput-SystemId"]);
        if (request.method() != http::verb::post || path.find('?') != std::string::npos)
            misuse_.push_back(path);
        const auto fields = form(request.body());
        Request r{path, system, 0, ""};
        reply.set("X-Rate-Limit-Limit", "300");
        if (std::string(request["X-Pvoutput-Apikey"]) != key_) {
            reply.result(http::status::unauthorized);
            reply.body() = "Unauthorized 401: Invalid API Key";
            requests_.push_back(r);
            return;
        }
        if (refused_systems_.contains(system)) {
            reply.result(http::status::unauthorized);
            reply.body() = "Unauthorized 401: Invalid System ID";
            requests_.push_back(r);
            return;
        }
        if (rate_limited_until_) {
            reply.result(http::status::forbidden);
            reply.set("X-Rate-Limit-Remaining", "0");
            reply.set("X-Rate-Limit-Reset", std::to_string(rate_limited_until_));
            reply.body() = "Forbidden 403: Exceeded number requests per hour";
            requests_.push_back(r);
            return;
        }
        // A donor's allowance, generous enough for a test's burst of uploads.
        reply.set("X-Rate-Limit-Remaining", std::to_string(299 - requests_.size() % 300));
        reply.set("X-Rate-Limit-Reset", "1999999999");
        const bool cumulative = fields.contains("c1") && fields.at("c1") == "2";
        if (path == "/service/r2/addstatus.jsp") {
            r.statuses = 1;
            r.first = fields.at("d") + " " + fields.at("t");
            requests_.push_back(r);
            if (!refuse_all_.empty()) {
                reply.result(http::status::bad_request);
                reply.body() = refusal(fields.at("v2"));
                return;
            }
            if (refused_.contains(r.first)) {
                reply.result(http::status::bad_request);
                reply.body() = "Bad request 400: Invalid status";
                return;
            }
            statuses_[system + " " + r.first] = {system,
                                                 fields.at("d"),
                                                 fields.at("t"),
                                                 std::stoll(fields.at("v1")),
                                                 std::stoll(fields.at("v2")),
                                                 cumulative};
            reply.body() = "OK 200: Added Status";
            return;
        }
        if (path == "/service/r2/addbatchstatus.jsp") {
            std::string data = fields.count("data") ? fields.at("data") : "";
            std::string body;
            std::size_t start = 0;
            std::vector<Status> batch;
            while (start < data.size()) {
                const auto end = std::min(data.find(';', start), data.size());
                std::vector<std::string> parts;
                std::size_t p = start;
                while (p <= end) {
                    const auto comma = std::min(data.find(',', p), end);
                    parts.push_back(data.substr(p, comma - p));
                    p = comma + 1;
                }
                batch.push_back({system, parts.at(0), parts.at(1), std::stoll(parts.at(2)),
                                 std::stoll(parts.at(3)), cumulative});
                start = end + 1;
            }
            r.statuses = batch.size();
            r.first = batch.empty() ? "" : batch.front().date + " " + batch.front().time;
            requests_.push_back(r);
            if (batch.size() > 30) {
                reply.result(http::status::bad_request);
                reply.body() = "Bad request 400: Maximum 30 statuses per request";
                return;
            }
            const bool refused_inside =
                std::any_of(batch.begin(), batch.end(), [&](const Status& s) {
                    return refused_.contains(s.date + " " + s.time);
                });
            if (!refuse_all_.empty() || (refuse_whole_batch_ && refused_inside)) {
                reply.result(http::status::bad_request);
                reply.body() =
                    refuse_all_.empty()
                        ? "Bad request 400: Invalid status"
                        : refusal(batch.empty() ? "0" : std::to_string(batch.front().v2));
                return;
            }
            for (const auto& status : batch) {
                const auto slot = status.date + " " + status.time;
                if (unnamed_.erase(slot))
                    continue;
                const bool added = !refused_.contains(slot);
                if (added)
                    statuses_[system + " " + slot] = status;
                body += (body.empty() ? "" : ";") + status.date + "," + status.time + "," +
                        (added ? "1" : "0");
            }
            reply.body() = body;
            return;
        }
        if (path == "/service/r2/addoutput.jsp") {
            requests_.push_back(r);
            outputs_.push_back(system + " " + request.body());
            reply.body() = "OK 200: Added Output";
            return;
        }
        reply.result(http::status::not_found);
        reply.body() = "Not found";
    }

    std::string key_;
    bool tls_;
    std::unique_ptr<TempDir> dir_;
    boost::asio::io_context io_;
    boost::asio::ssl::context context_;
    boost::asio::ip::tcp::acceptor acceptor_;
    std::atomic<bool> stopping_{false};
    std::mutex mutex_;
    bool down_ = false;
    bool hang_ = false;
    std::size_t hung_ = 0;
    long long rate_limited_until_ = 0;
    std::set<std::string> refused_;
    std::set<std::string> unnamed_;
    std::set<std::string> refused_systems_;
    std::string refuse_all_;
    std::string refusal(const std::string& power) const {
        auto text = refuse_all_;
        if (const auto at = text.find("{power}"); at != std::string::npos)
            text.replace(at, 7, power);
        return text;
    }
    bool refuse_whole_batch_ = false;
    std::map<std::string, Status> statuses_;
    std::vector<Request> requests_;
    std::vector<std::string> outputs_;
    std::vector<std::string> misuse_;
    std::thread thread_;
};

} // namespace test
