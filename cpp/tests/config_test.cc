#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "core/config.h"
#include "models/encoder_config.h"
#include "test_utils.h"

namespace nle::test {

namespace {

std::string write_config(const std::string& text) {
  const std::string path = temp_path("config.json");
  std::ofstream(path) << text;
  return path;
}

std::string error_of(const std::string& text) {
  try {
    EncoderConfig::from_config(Config::from_file(write_config(text)));
  } catch (const ModelError& e) {
    return e.what();
  }
  return "";
}

const char* kBert =
    R"({"model_type":"bert","vocab_size":120,"hidden_size":40,"num_hidden_layers":2,
        "num_attention_heads":5,"intermediate_size":72,"hidden_act":"gelu_new","layer_norm_eps":1e-5})";

}  // namespace

TEST(EncoderConfigTest, ReadsEveryHyperParameter) {
  const EncoderConfig c = EncoderConfig::from_config(Config::from_file(write_config(kBert)));
  EXPECT_EQ(c.hidden_size, 40);
  EXPECT_EQ(c.head_dim(), 8);
  EXPECT_EQ(c.intermediate_size, 72);
  EXPECT_EQ(c.activation, ops::Activation::GeluTanh);
  EXPECT_FLOAT_EQ(c.layer_norm_eps, 1e-5f);
  EXPECT_EQ(c.type_vocab_size, 2);  // the transformers default
  EXPECT_EQ(c.embedding_size, 40);
}

TEST(EncoderConfigTest, RobertaPositionsStartAfterPadding) {
  const EncoderConfig c = EncoderConfig::from_config(Config::from_file(write_config(
      R"({"model_type":"roberta","vocab_size":50,"hidden_size":8,"num_hidden_layers":1,
          "num_attention_heads":2,"intermediate_size":16,"max_position_embeddings":514,"pad_token_id":1})")));
  EXPECT_EQ(c.positions, PositionScheme::PaddingOffset);
  EXPECT_EQ(c.max_sequence_length(), 512);
}

TEST(EncoderConfigTest, MissingKeyIsNamed) {
  const std::string msg = error_of(R"({"model_type":"bert","vocab_size":120,"num_hidden_layers":2,
      "num_attention_heads":5,"intermediate_size":72})");
  EXPECT_NE(msg.find("'hidden_size'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
}

TEST(EncoderConfigTest, WrongTypeIsNamed) {
  const std::string msg = error_of(R"({"model_type":"bert","vocab_size":"many","hidden_size":40,
      "num_hidden_layers":2,"num_attention_heads":5,"intermediate_size":72})");
  EXPECT_NE(msg.find("'vocab_size'"), std::string::npos) << msg;
}

TEST(EncoderConfigTest, RejectsUnsupportedValues) {
  EXPECT_NE(error_of(R"({"model_type":"gpt2"})").find("'model_type'"), std::string::npos);
  std::string bad_heads = kBert;
  bad_heads.replace(bad_heads.find("\"num_attention_heads\":5"), 23, "\"num_attention_heads\":7");
  EXPECT_NE(error_of(bad_heads).find("multiple"), std::string::npos);
  std::string bad_act = kBert;
  bad_act.replace(bad_act.find("gelu_new"), 8, "mystery");
  EXPECT_NE(error_of(bad_act).find("'hidden_act'"), std::string::npos);
}

TEST(ConfigTest, InvalidJson) {
  try {
    Config::from_file(write_config("{\"model_type\": "));
    FAIL();
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("not valid JSON"), std::string::npos);
  }
}

TEST(ConfigTest, NullCountsAsMissing) {
  const Config c = Config::from_file(write_config(R"({"classifier_dropout": null, "n": 512.0})"));
  EXPECT_FALSE(c.has("classifier_dropout"));
  EXPECT_EQ(c.get_float("classifier_dropout", 0.5), 0.5);
  EXPECT_EQ(c.get_int("n"), 512);
}

}  // namespace nle::test
