#include "tls_reload.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

namespace gemwh {

struct CertReloader::Pair {
  X509* cert = nullptr;
  STACK_OF(X509)* chain = nullptr;
  EVP_PKEY* key = nullptr;
  ~Pair() {
    X509_free(cert);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(key);
  }
};

namespace {
std::string openssl_error() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (!e) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}
}  // namespace

CertReloader::CertReloader(std::string cert_path, std::string key_path)
    : cert_path_(std::move(cert_path)), key_path_(std::move(key_path)) {}

CertReloader::~CertReloader() { stop(); }

bool CertReloader::stat_file(const std::string& path, FileSig* sig) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return false;
  sig->dev = st.st_dev;
  sig->ino = st.st_ino;
  sig->size = uint64_t(st.st_size);
  sig->mtime_ns = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  sig->ctime_ns = int64_t(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
  return true;
}

std::shared_ptr<const CertReloader::Pair> CertReloader::current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

bool CertReloader::reload(std::string* err) {
  std::lock_guard<std::mutex> reload_lock(reload_mu_);
  FileSig cert_sig, key_sig;
  bool have = current() != nullptr;
  if (!stat_file(cert_path_, &cert_sig) || !stat_file(key_path_, &key_sig)) {
    *err = std::string("cannot stat certificate or key: ") + std::strerror(errno);
    return have;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (current_ && cert_sig == loaded_cert_sig_ && key_sig == loaded_key_sig_) return true;
  }

  auto pair = std::make_shared<Pair>();
  BIO* bio = BIO_new_file(cert_path_.c_str(), "r");
  if (!bio) {
    *err = "cannot open " + cert_path_ + ": " + openssl_error();
    return have;
  }
  pair->cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  pair->chain = sk_X509_new_null();
  if (pair->cert) {
    while (X509* extra = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
      sk_X509_push(pair->chain, extra);
    }
    ERR_clear_error();  // the loop ends with "no start line"
  }
  BIO_free(bio);
  if (!pair->cert) {
    *err = "no certificate in " + cert_path_ + ": " + openssl_error();
    return have;
  }
  bio = BIO_new_file(key_path_.c_str(), "r");
  if (!bio) {
    *err = "cannot open " + key_path_ + ": " + openssl_error();
    return have;
  }
  pair->key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!pair->key) {
    *err = "no private key in " + key_path_ + ": " + openssl_error();
    return have;
  }
  if (X509_check_private_key(pair->cert, pair->key) != 1) {
    ERR_clear_error();
    *err = "the key in " + key_path_ + " does not match the certificate in " + cert_path_ +
           " (rotation in progress?)";
    return have;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    current_ = std::move(pair);
    loaded_cert_sig_ = cert_sig;
    loaded_key_sig_ = key_sig;
  }
  generation_.fetch_add(1);
  err->clear();
  return true;
}

int CertReloader::cert_cb(SSL* ssl, void* arg) {
  auto* self = static_cast<CertReloader*>(arg);
  std::shared_ptr<const Pair> p = self->current();
  if (!p) return 0;
  // Each call takes its own reference: the pair may be swapped and freed while this
  // connection still uses the certificate.
  if (SSL_use_certificate(ssl, p->cert) != 1 || SSL_use_PrivateKey(ssl, p->key) != 1 ||
      SSL_set1_chain(ssl, p->chain) != 1) {
    ERR_clear_error();
    return 0;
  }
  return 1;
}

bool CertReloader::install(SSL_CTX* ctx) {
  std::shared_ptr<const Pair> p = current();
  if (!p) return false;
  if (SSL_CTX_use_certificate(ctx, p->cert) != 1 || SSL_CTX_use_PrivateKey(ctx, p->key) != 1 ||
      SSL_CTX_set1_chain(ctx, p->chain) != 1) {
    ERR_clear_error();
    return false;
  }
  SSL_CTX_set_cert_cb(ctx, &CertReloader::cert_cb, this);
  return true;
}

void CertReloader::start(std::chrono::milliseconds interval,
                         std::function<void(const std::string&)> log) {
  stop();
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stopping_ = false;
  }
  watcher_ = std::thread([this, interval, log] {
    std::string last_error;
    std::unique_lock<std::mutex> lock(stop_mu_);
    while (!stop_cv_.wait_for(lock, interval, [this] { return stopping_; })) {
      lock.unlock();
      uint64_t before = generation();
      std::string err;
      reload(&err);
      if (log) {
        if (generation() != before) {
          log("reloaded certificate " + cert_path_ + " and key " + key_path_);
          last_error.clear();
        } else if (!err.empty() && err != last_error) {
          log("certificate reload failed, still serving the previous one: " + err);
        }
      }
      last_error = err;
      lock.lock();
    }
  });
}

void CertReloader::stop() {
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
}

}  // namespace gemwh
