/**
 * The model layer: model folders and preset ids → validated config, weights
 * and tokenizer. Import from here rather than from the individual files.
 */
export * from './types';
export * from './errors';
export { parseHfConfig, loadModelConfig, type ParseConfigOptions } from './config';
export {
  SafetensorsFile, openSafetensors, writeSafetensors, DTYPE_BYTES,
  type SafeDtype, type WritableDtype, type TensorInfo, type TensorSlice, type TensorToWrite,
} from './safetensors';
export { WeightStore, expectedTensors, validateWeights } from './weights';
export { PRESET_IDS, PRESET_VERSION, isPresetId, presetSpec, presetConfig, type PresetId, type PresetSpec } from './presets';
export { ensurePreset, presetDir, isPresetComplete, writeSyntheticModel, toHfConfig, type ProgressFn } from './synth';
export { loadTokenizer, type TextTokenizer, type StreamDecoder, type ChatMessage } from './tokenizer';
export { listModels, resolveModel, summarizeFolder, QK_PROJECTION_NOTE, type ResolvedModel, type ListModelsOptions } from './catalog';
export { paralabCacheDir, hfHubDir, paralabModelPaths } from './paths';
