#include "ecu2mqtt/net/pvoutput_client.hpp"

#include "ecu2mqtt/net/asio.hpp"
#include "ecu2mqtt/net/host_port.hpp"

#include <algorithm>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <functional>
#include <map>
#include <openssl/x509_vfy.h>
#include <set>
#include <stdexcept>

namespace ecu2mqtt {
namespace asio = boost::asio;
namespace http = boost::beast::http;
using asio::ip::tcp;

namespace {

// PVOutput's limit is per hour: a reset time in the past, or further away than an hour (a wrong
// clock on either side), would make the uploader hammer it or park for days.
std::int64_t rate_limit_end(std::optional<std::int64_t> reset_unix, std::int64_t now_s) {
    return std::clamp(reset_unix.value_or(now_s + 3600), now_s + 60, now_s + 3600);
}

// Why PVOutput's certificate was refused, named as the TLS probe names a broker's.
std::string certificate_failure(int error, const std::string& host) {
    const std::string detail = X509_verify_cert_error_string(error);
    switch (error) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        return "unknown CA: the certificate of " + host + " is not signed by a CA trusted here (" +
               detail + "; trusted: the system CAs)";
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return "expired certificate: " + host + "'s certificate (or its CA's) has expired";
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return "certificate not yet valid (" + detail + "): check this host's clock";
    default:
        return "certificate rejected: " + detail;
    }
}

} // namespace

PvoutputEndpoint parse_pvoutput_url(const std::string& url) {
    PvoutputEndpoint endpoint;
    std::string rest;
    if (url.starts_with("https://")) {
        rest = url.substr(8);
    } else if (url.starts_with("http://")) {
        endpoint.tls = false;
        endpoint.port = 80;
        rest = url.substr(7);
    } else {
        throw std::invalid_argument("must start with https:// (or http://)");
    }
    const auto slash = rest.find('/');
    const auto authority = rest.substr(0, slash);
    if (authority.find('@') != std::string::npos || rest.find_first_of("?#") != std::string::npos)
        throw std::invalid_argument("give the server only: no user, query or fragment (the key "
                                    "is --pvoutput-api-key)");
    const auto parsed = parse_host_port(authority); // throws std::invalid_argument
    endpoint.host = parsed.host;
    if (parsed.port)
        endpoint.port = *parsed.port;
    if (slash != std::string::npos) {
        endpoint.prefix = rest.substr(slash);
        while (!endpoint.prefix.empty() && endpoint.prefix.back() == '/')
            endpoint.prefix.pop_back();
    }
    return endpoint;
}

struct PvoutputClient::Answer {
    std::string network_error; // set: no HTTP reply
    int status = 0;
    std::string body;
    PvoutputRateLimit rate;
};

// One POST: resolve, connect, (TLS handshake,) write, read, close. Never outlives its timeout.
struct PvoutputClient::Exchange : std::enable_shared_from_this<Exchange> {
    Exchange(asio::any_io_executor executor, const PvoutputEndpoint& endpoint,
             std::function<void(Answer)> done)
        : context(asio::ssl::context::tls_client), resolver(executor), timer(executor),
          endpoint(endpoint), done(std::move(done)) {}

    void start(std::chrono::seconds timeout) {
        if (endpoint.tls) {
            boost::system::error_code ec;
            context.set_default_verify_paths(ec);
            if (ec)
                return finish_error("cannot use the system CAs: " + ec.message());
            context.set_verify_mode(asio::ssl::verify_peer);
            tls.emplace(resolver.get_executor(), context);
            tls->set_verify_callback([this](bool preverified, asio::ssl::verify_context& check) {
                X509_STORE_CTX* store = check.native_handle();
                if (!preverified) {
                    if (verify_error == X509_V_OK)
                        verify_error = X509_STORE_CTX_get_error(store);
                    return false;
                }
                if (X509_STORE_CTX_get_error_depth(store) == 0 &&
                    !asio::ssl::host_name_verification(endpoint.host)(preverified, check)) {
                    host_mismatch = true;
                    return false;
                }
                return true;
            });
            if (!is_ip_literal(endpoint.host))
                SSL_set_tlsext_host_name(tls->native_handle(), endpoint.host.c_str());
        } else {
            plain.emplace(resolver.get_executor());
        }
        timer.expires_after(timeout);
        timer.async_wait([self = shared_from_this(), timeout](boost::system::error_code e) {
            if (!e)
                self->finish_error("no answer from " + self->where() + " within " +
                                   std::to_string(timeout.count()) + " s");
        });
        resolver.async_resolve(
            endpoint.host, std::to_string(endpoint.port),
            [self = shared_from_this()](boost::system::error_code e,
                                        const tcp::resolver::results_type& results) {
                if (e)
                    return self->finish_error("cannot resolve " + self->endpoint.host + ": " +
                                              e.message());
                asio::async_connect(self->socket(), results,
                                    [self](boost::system::error_code c, const tcp::endpoint&) {
                                        if (c)
                                            return self->finish_error("cannot connect to " +
                                                                      self->where() + ": " +
                                                                      c.message());
                                        self->connected();
                                    });
            });
    }

    void connected() {
        if (!tls)
            return exchange(*plain);
        tls->async_handshake(asio::ssl::stream_base::client, [self = shared_from_this()](
                                                                 boost::system::error_code e) {
            if (!e)
                return self->exchange(*self->tls);
            if (self->host_mismatch)
                return self->finish_error("TLS: hostname mismatch: the certificate of " +
                                          self->where() + " is not issued for \"" +
                                          self->endpoint.host + "\"");
            if (self->verify_error != X509_V_OK)
                return self->finish_error(
                    "TLS: " + certificate_failure(self->verify_error, self->endpoint.host));
            self->finish_error("TLS handshake with " + self->where() + " failed: " + e.message());
        });
    }

    template <typename Stream> void exchange(Stream& stream) {
        http::async_write(
            stream, request,
            [self = shared_from_this(), &stream](boost::system::error_code e, std::size_t) {
                if (e)
                    return self->finish_error("sending to " + self->where() + ": " + e.message());
                http::async_read(
                    stream, self->buffer, self->response,
                    [self](boost::system::error_code r, std::size_t) {
                        if (r)
                            return self->finish_error("reading the reply of " + self->where() +
                                                      ": " + r.message());
                        Answer answer;
                        answer.status = static_cast<int>(self->response.result_int());
                        answer.body = self->response.body();
                        answer.rate = parse_rate_limit(self->header("X-Rate-Limit-Remaining"),
                                                       self->header("X-Rate-Limit-Limit"),
                                                       self->header("X-Rate-Limit-Reset"));
                        self->finish(std::move(answer));
                    });
            });
    }

    tcp::socket& socket() { return tls ? tls->next_layer() : *plain; }
    std::string_view header(std::string_view name) const {
        const auto value = response[boost::beast::string_view(name.data(), name.size())];
        return {value.data(), value.size()};
    }
    std::string where() const { return endpoint.host + ":" + std::to_string(endpoint.port); }

    void finish_error(std::string error) {
        Answer answer;
        answer.network_error = std::move(error);
        finish(std::move(answer));
    }
    void cancel() { finish_error("stopped"); }

    void finish(Answer answer) {
        if (finished)
            return;
        finished = true;
        timer.cancel();
        resolver.cancel();
        if (tls || plain) {
            boost::system::error_code ignored;
            socket().close(ignored);
        }
        asio::post(resolver.get_executor(),
                   [done = std::move(done), answer = std::move(answer)]() mutable {
                       done(std::move(answer));
                   });
    }

    asio::ssl::context context;
    tcp::resolver resolver;
    asio::steady_timer timer;
    PvoutputEndpoint endpoint;
    std::optional<asio::ssl::stream<tcp::socket>> tls;
    std::optional<tcp::socket> plain;
    http::request<http::string_body> request;
    http::response<http::string_body> response;
    boost::beast::flat_buffer buffer;
    std::function<void(Answer)> done;
    int verify_error = X509_V_OK;
    bool host_mismatch = false;
    bool finished = false;
};

PvoutputClient::PvoutputClient(asio::any_io_executor executor, PvoutputClientConfig config,
                               Store& store, const Clock& clock, Logger& log)
    : executor_(executor), config_(std::move(config)), endpoint_(parse_pvoutput_url(config_.url)),
      limits_(pvoutput_limits(config_.donor)), store_(store), clock_(clock), log_(log),
      queue_(std::make_unique<PvoutputQueue>(store.file())), timer_(executor) {
    snapshot_.enabled = true;
    snapshot_.state = "current";
}

PvoutputClient::~PvoutputClient() {
    stop();
}

void PvoutputClient::start() {
    running_ = true;
    log_.info("pvoutput_started", {{"url", config_.url},
                                   {"interval_min", std::to_string(config_.mapping.interval_min)},
                                   {"donor", config_.donor ? "yes" : "no"},
                                   {"batch", std::to_string(limits_.batch)}});
    schedule(std::chrono::milliseconds(0));
}

void PvoutputClient::stop() {
    running_ = false;
    timer_.cancel();
    if (in_flight_)
        std::exchange(in_flight_, nullptr)->cancel();
}

std::int64_t PvoutputClient::now_s() const {
    return std::chrono::duration_cast<std::chrono::seconds>(clock_.now().time_since_epoch())
        .count();
}

// PVOutput counts a status's age in days of its local date; a day of slack for the zone.
std::string PvoutputClient::oldest_allowed_slot() const {
    const auto oldest =
        from_epoch_seconds(now_s() - std::int64_t(limits_.max_age_days - 1) * 86400);
    return format_iso(date_of(oldest)) + "T00:00";
}

void PvoutputClient::schedule(std::chrono::milliseconds after) {
    if (!running_)
        return;
    timer_.expires_after(after);
    timer_.async_wait([this, alive = std::weak_ptr<int>(alive_)](boost::system::error_code e) {
        if (!e && !alive.expired())
            tick();
    });
}

void PvoutputClient::tick() {
    if (!running_ || busy_ || snapshot_.stopped)
        return;
    if (now_s() < not_before_s_)
        return schedule(config_.poll);
    snapshot_.waiting_until_unix = 0;
    try {
        if (expire_old())
            return;
        std::vector<std::string> systems;
        for (const auto& [ecu, system] : config_.mapping.system_of)
            if (std::find(systems.begin(), systems.end(), system) == systems.end())
                systems.push_back(system);
        for (std::size_t i = 0; i < systems.size(); ++i) {
            const auto& system = systems[(next_system_ + i) % systems.size()];
            auto pending = queue_->pending(system, send_alone_ ? 1 : limits_.batch, true);
            if (pending.empty())
                continue;
            next_system_ = (next_system_ + i + 1) % systems.size();
            if (pending.size() == 1) {
                const auto body = addstatus_body(
                    {pending[0].slot, pending[0].lifetime_wh, pending[0].power_w, {}, {}});
                return send(Kind::Status, system, body, std::move(pending), std::nullopt);
            }
            std::vector<PvoutputStatusValues> values;
            for (const auto& status : pending)
                values.push_back({status.slot, status.lifetime_wh, status.power_w, {}, {}});
            return send(Kind::Batch, system, addbatchstatus_body(values), std::move(pending),
                        std::nullopt);
        }
        const auto oldest_day = oldest_allowed_slot().substr(0, 10);
        for (const auto& system : systems)
            if (auto day = queue_->day_to_close(system, oldest_day)) {
                auto body =
                    addoutput_body(day->day, day->generated_wh, day->peak_power_w, day->peak_time);
                return send(Kind::Output, system, std::move(body), {}, std::move(day));
            }
    } catch (const DatabaseError& e) {
        snapshot_.last_error = std::string("reading the queue: ") + e.what();
        log_.error("pvoutput_queue_unreadable", {{"error", e.what()}});
    }
    snapshot_.state = "current";
    schedule(config_.poll);
}

bool PvoutputClient::expire_old() {
    const auto cutoff = oldest_allowed_slot();
    const auto old = queue_->pending_before(cutoff);
    if (old == 0)
        return false;
    if (const auto day = now_s() / 86400; day != expiry_warned_day_) {
        expiry_warned_day_ = day;
        log_.warn("pvoutput_statuses_expired",
                  {{"statuses", std::to_string(old)},
                   {"older_than", cutoff},
                   {"max_age_days", std::to_string(limits_.max_age_days)},
                   {"action", "kept as expired (see history --pvoutput); PVOutput takes no "
                              "status that old"}});
    }
    WriteBatch batch;
    PvoutputQueue::mark_expired(batch, cutoff, now_s());
    mark_then_continue(std::move(batch));
    return true;
}

void PvoutputClient::send(Kind kind, std::string system_id, std::string body,
                          std::vector<PvoutputStatus> statuses,
                          std::optional<PvoutputDayOutput> output) {
    busy_ = true;
    snapshot_.state = kind == Kind::Batch ? "sending backlog" : "current";
    const std::string_view path = kind == Kind::Status  ? kPvoutputAddStatus
                                  : kind == Kind::Batch ? kPvoutputAddBatchStatus
                                                        : kPvoutputAddOutput;
    auto exchange = std::make_shared<Exchange>(
        executor_, endpoint_,
        [this, alive = std::weak_ptr<int>(alive_), kind, statuses = std::move(statuses),
         output = std::move(output)](Answer answer) mutable {
            if (alive.expired())
                return;
            in_flight_ = nullptr;
            if (!running_) {
                busy_ = false;
                return;
            }
            answered(kind, std::move(statuses), std::move(output), std::move(answer));
        });
    auto& request = exchange->request;
    request.method(http::verb::post);
    request.target(endpoint_.prefix + std::string(path));
    request.version(11);
    const bool default_port = endpoint_.port == (endpoint_.tls ? 443 : 80);
    request.set(http::field::host,
                host_port_text(
                    {endpoint_.host, default_port ? std::nullopt : std::optional(endpoint_.port)}));
    request.set(http::field::user_agent, config_.user_agent);
    request.set(http::field::content_type, "application/x-www-form-urlencoded");
    request.set(http::field::connection, "close");
    request.set("X-Pvoutput-Apikey", config_.api_key);
    request.set("X-Pvoutput-SystemId", system_id);
    request.set("X-Rate-Limit", "1");
    request.body() = std::move(body);
    request.prepare_payload();
    ++snapshot_.requests;
    in_flight_ = exchange;
    exchange->start(config_.request_timeout);
}

void PvoutputClient::answered(Kind kind, std::vector<PvoutputStatus> statuses,
                              std::optional<PvoutputDayOutput> output, Answer answer) {
    if (answer.rate.remaining)
        snapshot_.requests_left = answer.rate.remaining;
    if (answer.rate.limit)
        snapshot_.request_limit = answer.rate.limit;
    if (!answer.network_error.empty())
        return back_off(answer.network_error);
    const auto reply = classify_reply(answer.status, answer.body);
    const auto now = now_s();
    WriteBatch marks;
    switch (reply.kind) {
    case PvoutputReplyKind::Ok: {
        if (kind == Kind::Output) {
            output->sent_at_s = now;
            PvoutputQueue::mark_output_sent(marks, *output);
            log_.info("pvoutput_day_sent",
                      {{"system", output->system_id},
                       {"day", output->day},
                       {"generated_wh", std::to_string(std::llround(output->generated_wh))}});
            break;
        }
        std::vector<bool> added(statuses.size(), kind == Kind::Status);
        if (kind == Kind::Batch) {
            const auto results = parse_batch_reply(answer.body);
            if (!results)
                return back_off("unreadable addbatchstatus reply: " + reply.reason);
            std::set<std::string> taken, listed;
            for (const auto& result : *results) {
                listed.insert(result.slot);
                if (result.added)
                    taken.insert(result.slot);
            }
            // A status the reply does not name was neither taken nor refused: it stays pending.
            const auto unnamed = std::erase_if(
                statuses, [&](const PvoutputStatus& s) { return !listed.contains(s.slot); });
            if (unnamed)
                log_.warn("pvoutput_reply_incomplete",
                          {{"statuses_not_named", std::to_string(unnamed)},
                           {"action", "kept pending, to go again"}});
            added.assign(statuses.size(), false);
            std::size_t refused = 0;
            for (std::size_t i = 0; i < statuses.size(); ++i) {
                added[i] = taken.contains(statuses[i].slot);
                if (!added[i]) {
                    ++refused;
                    log_.warn("pvoutput_status_not_added",
                              {{"system", statuses[i].system_id},
                               {"slot", statuses[i].slot},
                               {"action", "kept as rejected (see history --pvoutput)"}});
                }
            }
            if (refused)
                snapshot_.last_error = std::to_string(refused) + " status(es) not added";
        }
        if (send_alone_)
            send_alone_ -= std::min(send_alone_, statuses.size());
        snapshot_.last_upload_unix = now;
        PvoutputQueue::mark_sent(marks, std::move(statuses), std::move(added), now,
                                 "not added by PVOutput");
        break;
    }
    case PvoutputReplyKind::BadRequest:
        snapshot_.last_error = reply.reason;
        if (kind == Kind::Batch && statuses.size() > 1) {
            // One bad status fails the whole batch: they go one by one until it is found.
            send_alone_ = statuses.size();
            log_.warn("pvoutput_batch_refused",
                      {{"reason", reply.reason}, {"action", "sending these statuses one by one"}});
            busy_ = false;
            return schedule(std::chrono::milliseconds(0));
        }
        if (kind == Kind::Output) {
            log_.warn(
                "pvoutput_day_refused",
                {{"system", output->system_id}, {"day", output->day}, {"reason", reply.reason}});
            output->sent_at_s = now;
            PvoutputQueue::mark_output_sent(marks, *output);
            break;
        }
        log_.warn("pvoutput_status_refused", {{"system", statuses.front().system_id},
                                              {"slot", statuses.front().slot},
                                              {"reason", reply.reason},
                                              {"action", "kept as rejected"}});
        if (send_alone_)
            --send_alone_;
        PvoutputQueue::mark_sent(marks, std::move(statuses), {false}, now, reply.reason);
        break;
    case PvoutputReplyKind::RateLimited:
        not_before_s_ = rate_limit_end(answer.rate.reset_unix, now);
        snapshot_.waiting_until_unix = not_before_s_;
        snapshot_.requests_left = 0;
        snapshot_.state = "rate-limited";
        snapshot_.last_error = reply.reason;
        log_.warn("pvoutput_rate_limited",
                  {{"reason", reply.reason},
                   {"resumes_in_s", std::to_string(not_before_s_ - now)},
                   {"action", config_.donor ? "fewer systems per key"
                                            : "wait, or --pvoutput-donor in donation mode"}});
        busy_ = false;
        return schedule(config_.poll);
    case PvoutputReplyKind::AuthFailed:
        snapshot_.stopped = true;
        snapshot_.state = "stopped";
        snapshot_.last_error = reply.reason;
        busy_ = false;
        log_.error("pvoutput_refused",
                   {{"status", std::to_string(answer.status)},
                    {"reason", reply.reason},
                    {"action", "uploads stopped: check --pvoutput-api-key and "
                               "--pvoutput-system-id, then restart; statuses stay queued"}});
        return;
    case PvoutputReplyKind::Retry:
        return back_off(reply.reason);
    }
    backoff_ = std::chrono::seconds(0);
    if (answer.rate.remaining && *answer.rate.remaining <= 0 && answer.rate.reset_unix) {
        not_before_s_ = rate_limit_end(answer.rate.reset_unix, now);
        snapshot_.waiting_until_unix = not_before_s_;
        snapshot_.state = "rate-limited";
    }
    mark_then_continue(std::move(marks));
}

void PvoutputClient::mark_then_continue(WriteBatch batch) {
    busy_ = true;
    store_.submit(std::move(batch),
                  [this, alive = std::weak_ptr<int>(alive_)](const std::string& error) {
                      if (alive.expired())
                          return;
                      busy_ = false;
                      if (!error.empty()) {
                          // Not marked: those statuses go again, which PVOutput takes as the same.
                          snapshot_.last_error = "store: " + error;
                          return schedule(config_.poll);
                      }
                      schedule(std::chrono::milliseconds(0));
                  });
}

void PvoutputClient::back_off(const std::string& error) {
    backoff_ =
        backoff_.count() == 0 ? config_.first_backoff : std::min(backoff_ * 2, config_.max_backoff);
    not_before_s_ = now_s() + backoff_.count();
    snapshot_.waiting_until_unix = not_before_s_;
    snapshot_.state = "backing off";
    snapshot_.last_error = error;
    busy_ = false;
    log_.warn("pvoutput_unreachable", {{"error", error},
                                       {"retry_in_s", std::to_string(backoff_.count())},
                                       {"action", "statuses stay queued and go once it answers"}});
    schedule(config_.poll);
}

PvoutputSnapshot PvoutputClient::snapshot() {
    try {
        const auto counts = queue_->counts();
        snapshot_.backlog = counts.pending;
        snapshot_.sent = counts.sent;
        snapshot_.rejected = counts.rejected;
        snapshot_.expired = counts.expired;
    } catch (const DatabaseError&) {
        // The last counts stand; the page still shows the rest.
    }
    auto copy = snapshot_;
    if (!copy.stopped && copy.waiting_until_unix == 0 && copy.backlog > 1 &&
        copy.state == "current")
        copy.state = "sending backlog";
    return copy;
}

} // namespace ecu2mqtt
