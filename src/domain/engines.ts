/**
 * The media engines that can process an episode: Ittybit (a hosted media API) or the local engine
 * (ffmpeg on Podflow's own workers). Each episode records the one it was created with.
 */
export const ENGINE_KINDS = ["ittybit", "local"] as const;
export type EngineKind = (typeof ENGINE_KINDS)[number];
