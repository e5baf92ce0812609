// A small JSON value with a strict parser and a writer, for the metadata document inside model
// files. Objects keep their key order so a document read and written back diffs cleanly.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace ddcsr::json {

class Value {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };

  Value() = default;
  Value(bool b) : type_(Type::Bool), bool_(b) {}
  Value(double d) : type_(Type::Number), number_(d) {}
  Value(int i) : type_(Type::Number), number_(i) {}
  Value(int64_t i) : type_(Type::Number), number_(static_cast<double>(i)) {}
  Value(const char* s) : type_(Type::String), string_(s) {}
  Value(std::string s) : type_(Type::String), string_(std::move(s)) {}
  Value(const std::vector<std::string>& strings);
  static Value array() { Value v; v.type_ = Type::Array; return v; }
  static Value object() { Value v; v.type_ = Type::Object; return v; }

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::Null; }
  bool is_number() const { return type_ == Type::Number; }
  bool is_string() const { return type_ == Type::String; }
  bool is_array() const { return type_ == Type::Array; }
  bool is_object() const { return type_ == Type::Object; }
  bool is_bool() const { return type_ == Type::Bool; }

  // Typed access; std::runtime_error on a type mismatch.
  bool as_bool() const;
  double as_number() const;
  const std::string& as_string() const;
  const std::vector<Value>& items() const;
  std::vector<std::string> as_string_list() const;

  // Object access. find() returns nullptr when the key is absent.
  const Value* find(const std::string& key) const;
  Value& operator[](const std::string& key);  // inserts null when absent (object or null only)
  const std::vector<std::pair<std::string, Value>>& members() const;
  void push_back(Value v);  // array (or null, which becomes an array)

  std::string dump(int indent = 1) const;

 private:
  void dump_to(std::string& out, int indent, int depth) const;
  Type type_ = Type::Null;
  bool bool_ = false;
  double number_ = 0;
  std::string string_;
  std::vector<Value> array_;
  std::vector<std::pair<std::string, Value>> object_;
};

// Strict RFC 8259 parsing; std::runtime_error with the byte offset of the fault.
Value parse(const std::string& text);

}  // namespace ddcsr::json
