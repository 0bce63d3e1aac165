/** Public API of the data layer: datasets, the sharded sampler and the batch loader. */
export { DataError } from './errors.js';
export type {
  Dataset, DatasetBase, ClassificationDataset, RegressionDataset, TokenDataset, StreamedTokenDataset, WindowReader, TokenTask, SampleTransform,
} from './dataset.js';
export { IGNORE_INDEX, isStreamed, isTokenTask, shapeSize, sampleSize, targetSize } from './dataset.js';
export { readIdxFile, parseIdx, type IdxArray, type IdxKind } from './idx.js';
export { loadMnist, defaultMnistDir, MNIST_MEAN, MNIST_STD, type Mnist, type MnistOptions } from './mnist.js';
export { DistributedSampler, type DistributedSamplerOptions, type IndexSource } from './sampler.js';
export { ShareSampler, type ShareSamplerOptions, splitCounts } from './share_sampler.js';
export {
  BatchLoader,
  type BatchLoaderOptions,
  type BatchOf,
  type ClassificationBatch,
  type RegressionBatch,
  type TokenBatch,
} from './loader.js';
export {
  syntheticRegression,
  syntheticClassification,
  type SyntheticRegressionOptions,
  type SyntheticClassificationOptions,
} from './synthetic.js';
export {
  syntheticImage,
  SYNTHETIC_IMAGE_DEFAULTS,
  type SyntheticImageOptions,
} from './synthetic_image.js';
export {
  syntheticText,
  SYNTHETIC_TEXT_DEFAULTS,
  type SyntheticText,
  type SyntheticTextOptions,
} from './synthetic_text.js';
export {
  loadCifar10,
  CIFAR10_MEAN,
  CIFAR10_STD,
  CIFAR10_DEFAULT_DIR,
  CIFAR10_URL,
  type Cifar10Options,
} from './cifar10.js';
export { loadText, validationStart, TEXT_DEFAULTS, type TextOptions, type TextData } from './text.js';
export { loadChat, chatWindows, CHAT_MAX_CONTEXT, type ChatDataOptions, type ChatData } from './chat.js';
export { readChatExamples, looksLikeChat, type ChatExample, type ChatTurn } from './chat_examples.js';
export { chatTokens, markGenerationBlocks, type ChatFormat, type ChatRenderer, type ChatTokens } from './chat_tokens.js';
export { makeTokenizer, isNamedTokenizer, TOKENIZERS, type Tokenizer, type TokenizerName } from './tokenizer.js';
export { loadHfTokenizer, tokenizerFile } from './hf_tokenizer.js';
export { corpusFiles, formatOf, type CorpusFile, type CorpusFormat } from './corpus_files.js';
export { documentPieces, type DocumentPiece, type DocumentOptions } from './documents.js';
export { TokenFile, buildTokenFile, cachedTokens, tokenCachePath, defaultTokenCacheDir } from './token_cache.js';
export { tokenWindows, windowCount, windowSpan, type WindowRange } from './text_windows.js';
export { loadLetters, LETTER_FEATURES, LETTER_CLASSES, type LettersData, type LetterShard } from './letters.js';
export { loadDataset, GUIDE_DATASETS, type GuideDatasetName, type DatasetRequest } from './load.js';
