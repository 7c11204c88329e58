// Data sets named on the command line: "fashion-mnist:test",
// "cifar10:/data/cifar-10-batches-bin:test", "folder:/data/imagenet/val",
// "idx:/p/images-idx3-ubyte,/p/labels-idx1-ubyte", ...
#pragma once

#include "qimera/data/dataset.h"

#include <filesystem>
#include <memory>
#include <string>

namespace qimera::data {

struct DatasetSpec {
  std::string kind;   // cifar10 | cifar100 | idx | folder | mnist | fashion-mnist
  std::string path;   // empty for mnist / fashion-mnist; "images,labels" for idx
  std::string split;  // train | test; empty for folder and idx
};

/// Accepted forms:
///   mnist[:train|:test]  fashion-mnist[:train|:test]         (prepared; split defaults to test)
///   cifar10:PATH[:train|:test]  cifar100:PATH[:train|:test]   (split defaults to test)
///   folder:PATH            idx:IMAGES_FILE,LABELS_FILE
DatasetSpec parse_dataset_spec(const std::string& text);

/// The canonical text of a spec (parse_dataset_spec(to_string(s)) == s).
std::string to_string(const DatasetSpec& spec);

/// Opens the data set; `data_root` holds the prepared mnist/ and fashion-mnist/ folders.
std::shared_ptr<Dataset> open_dataset(const DatasetSpec& spec,
                                      const std::filesystem::path& data_root);

/// $QIMERA_DATA_DIR, else $XDG_CACHE_HOME/qimera, else ~/.cache/qimera.
std::filesystem::path default_data_root();

}  // namespace qimera::data
