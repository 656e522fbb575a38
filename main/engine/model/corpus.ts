/**
 * The small built-in text the synthetic presets' BPE tokenizer is trained on
 * (see bpe.ts). Written for ParaLab, in English and simplified Chinese, about
 * the subject the lab is for, so that prompts users type in either language
 * get short, sensible token sequences. Changing this text changes every
 * synthetic tokenizer: bump PRESET_VERSION in presets.ts when you do.
 */

const ENGLISH = `
ParaLab is a small laboratory for parallel inference of large language models.
It runs the same model on one worker and on many workers, and it checks that
every parallel plan produces the same tokens as the single worker does.

A language model turns a prompt into tokens, and the tokens into vectors.
Each layer of the model reads the vectors, mixes them with attention, and
passes them through a feed-forward network. The last layer produces logits,
one score for every token in the vocabulary, and the next token is the one
with the highest score when decoding is greedy.

Inference has two phases. Prefill reads the whole prompt at once and fills the
key-value cache. Decode then produces one token at a time, and every new token
reads the cache that the earlier tokens wrote. Prefill is limited by compute;
decode is limited by memory bandwidth, because each step reads all the weights
to produce a single token.

Data parallelism keeps a full copy of the model on every device. Requests are
routed to the replicas, so throughput grows with the number of replicas while
the latency of one request stays the same. The only communication is the
request going in and the answer coming out.

Pipeline parallelism cuts the model into stages of consecutive layers. Each
device holds only the weights of its stage and sends the hidden states to the
next stage. With one request only one stage is busy at a time, so the latency
gets worse; with many micro-batches all stages work together and the pipeline
bubble shrinks.

Tensor parallelism splits every weight matrix across devices. The query, key
and value projections and the gate and up projections are split by columns;
the output projection and the down projection are split by rows, and an
all-reduce adds the partial results after each block. Tensor parallelism needs
a fast link, because it communicates twice in every layer.

Sequence parallelism splits the tokens of a long prompt across devices. Ring
attention passes blocks of keys and values around a ring and merges partial
results with the log-sum-exp trick. Ulysses uses an all-to-all exchange to
swap the sequence split for a head split before attention, and swaps it back
after attention.

Expert parallelism places the experts of a mixture-of-experts layer on
different devices. A router picks the top experts for each token, an
all-to-all dispatch sends the tokens to the devices that own those experts,
and a second all-to-all combines the results.

Every strategy has a cost: memory per device, bytes moved between devices,
time spent waiting, and the idle bubble of the pipeline. The lab measures
these costs and draws them side by side, so that the claims in the course
notes can be checked with real numbers instead of words.

Hello! How are you? Let's run the model with two workers and compare the
results. The first token arrived after 42 ms, and the next tokens came every
8 ms. Throughput was 125 tokens per second with a batch of 4 requests.
`;

const CHINESE = `
大模型推理的并行策略主要有数据并行、流水线并行、张量并行、序列并行和专家并行。
数据并行在每个设备上保存一份完整的模型，请求被分配到不同的副本上，吞吐量随副本数增加，但单个请求的延迟不会降低。
流水线并行把模型按层切分成多个阶段，每个设备只保存自己阶段的权重，隐藏状态从一个阶段传到下一个阶段。
张量并行把每个权重矩阵切分到多个设备上，每一层都需要通信，所以需要很快的互联。
序列并行把长提示词的序列切分到多个设备上，环形注意力在设备之间传递键和值的分块。
专家并行把混合专家模型中的专家放在不同的设备上，路由器为每个词元选择最合适的专家。
预填充阶段一次读取整个提示词并写入键值缓存，解码阶段每次只生成一个词元。
解码受限于显存带宽，因为每生成一个词元都要读取全部权重。
这个实验室真实地执行并行推理，并检查每一种并行方案是否得到与单卡相同的结果。
我们测量延迟、吞吐量、每个设备的内存、设备之间传输的字节数以及等待的时间。
你好！请用两个进程运行这个模型，然后比较它们的输出。
模型的词表、层数、隐藏维度和注意力头数决定了参数量和计算量。
`;

/** The training text: English, then Chinese. */
export const CORPUS: string = `${ENGLISH.trim()}\n\n${CHINESE.trim()}\n`;
