#!/usr/bin/env python3
"""Mandarin texts for the tts_zh recipe: short everyday sentences in Han characters.

The source is the word lists below, written for this recipe (no corpus is downloaded):
common phrases, people, times, activities and descriptions, many of them with a repeated
character (谢谢, 看看, 慢慢来, 天天, 星星, 妈妈, 宝宝, 好棒棒 …), which is what the
recipe is about: a frame classifier that merges repeated labels cannot write 棒棒, CTC
writes 棒 φ 棒. A small template grammar combines them ("妈妈今天想去公园",
"妹妹的眼睛大大的", "宝宝好棒棒", "你想看看星星吗", "我们一起唱歌吧" …); about a quarter
of the texts are single words or two or three words in any order, so that a model does
not learn to expect the grammar (it then mishears short utterances).

Every sentence occurs in at most one split (train/dev/test are disjoint in text), and the
two demonstration utterances 好棒 and 好棒棒 (HELD_OUT) are never a whole utterance of any
split: stage 4 of run.sh synthesizes them itself. As parts of longer sentences ("宝宝好棒棒",
"你们好棒") they do occur, in every split; run.sh prints how often in training. Texts of
up to SHORT characters may recur within a split, never across splits.

    python local/make_texts.py --seed 1 --out-dir data train=2000 dev=150 test=300
"""

import argparse
import random

HELD_OUT = ("好棒", "好棒棒")
SHORT = 3  # characters

PEOPLE = ["妈妈", "爸爸", "哥哥", "姐姐", "弟弟", "妹妹", "宝宝", "奶奶", "爷爷", "老师", "小明", "朋友们", "孩子们"]
PRONOUNS = ["我", "你", "他", "我们", "你们", "他们", "大家"]
SUBJECTS = PRONOUNS + PEOPLE
TIMES = ["今天", "明天", "昨天", "天天", "常常", "刚刚", "现在", "早上", "晚上", "每天"]
MODALS = ["", "想", "要", "喜欢", "也想", "也要", "不想", "不要", "可以", "会", "一起", "还要", "很想", "都想"]
ACTIVITIES = [
    "去公园", "去学校", "回家", "吃饭", "吃苹果", "喝水", "喝茶", "睡觉", "唱歌", "跳舞", "写字", "画画", "看书",
    "看电视", "看星星", "听音乐", "买东西", "打电话", "做饭", "学中文", "上课", "玩游戏", "散散步", "聊聊天",
    "说说话", "跑步", "想想办法", "试试看", "看看书", "走走路", "尝尝菜", "问问老师", "帮帮妈妈", "抱抱宝宝",
    "听听歌", "看看星星", "玩玩具", "吃棒棒糖",
]
DESCRIPTIONS = ["好棒", "好棒棒", "真棒", "很棒", "很好", "很高兴", "很开心", "很累", "很忙", "很可爱", "真好",
                "好可爱", "好开心", "棒棒的", "高高兴兴的", "开开心心的"]
THINGS = ["眼睛", "手", "头发", "房子", "书包", "衣服", "小狗", "小猫"]
REDUPLICATED = ["大大的", "小小的", "红红的", "高高的", "长长的", "圆圆的", "白白的", "干干净净的", "漂漂亮亮的",
                "亮亮的"]
GREETINGS = ["早上好", "晚上好", "晚安", "再见", "加油", "生日快乐", "明天见"]
PHRASES = ["谢谢", "谢谢你", "谢谢大家", "谢谢谢谢", "你好", "早上好", "晚上好", "晚安", "再见", "明天见", "没关系",
           "对不起", "好的", "太好了", "真好", "加油", "慢慢来", "等等我", "试试看", "想想看", "看看吧", "快快快",
           "好好休息", "天天开心", "天天向上", "多多关照", "哈哈哈", "生日快乐", "大大小小", "高高兴兴", "开开心心",
           "慢慢走", "好好学习", "星星真亮", "小小的星星", "天上的星星"]


WORDS = sorted(set(PEOPLE + PRONOUNS + TIMES + ACTIVITIES + DESCRIPTIONS + THINGS + REDUPLICATED + GREETINGS + PHRASES))


def sentence(rng: random.Random) -> str:
    """One sentence from the template grammar."""
    r = rng.random()
    s = rng.choice(SUBJECTS)
    if r < 0.30:  # 妈妈今天想去公园
        return s + rng.choice(TIMES) + rng.choice(MODALS) + rng.choice(ACTIVITIES)
    if r < 0.37:  # 我想看看书
        return s + rng.choice(MODALS[1:]) + rng.choice(ACTIVITIES)
    if r < 0.45:  # 宝宝好棒棒 / 我今天很开心
        return s + (rng.choice(TIMES) if rng.random() < 0.4 else "") + rng.choice(DESCRIPTIONS)
    if r < 0.51:  # 妹妹的眼睛大大的
        return rng.choice(SUBJECTS[:1] + PEOPLE) + "的" + rng.choice(THINGS) + rng.choice(REDUPLICATED)
    if r < 0.56:  # 你想去公园吗
        return rng.choice(["你", "你们", "他", "他们"] + PEOPLE) + rng.choice(MODALS[1:]) + rng.choice(ACTIVITIES) + "吗"
    if r < 0.59:  # 我们一起唱歌吧
        return rng.choice(["我们", "大家", "你们"]) + "一起" + rng.choice(ACTIVITIES) + "吧"
    if r < 0.64:  # 爷爷生日快乐 / 谢谢妈妈
        p = rng.choice(PEOPLE)
        return "谢谢" + p if rng.random() < 0.25 else p + rng.choice(GREETINGS)
    if r < 0.71:  # 妈妈说没关系 / 老师对宝宝说慢慢来
        if rng.random() < 0.7:
            return s + "说" + rng.choice(PHRASES)
        return s + "对" + rng.choice(PEOPLE) + "说" + rng.choice(PHRASES)
    if r < 0.74:  # 人人都喜欢唱歌 / 天上的星星亮亮的
        if rng.random() < 0.5:
            return "人人都" + rng.choice(["喜欢", "想", "要", "会"]) + rng.choice(ACTIVITIES)
        return "天上的星星" + rng.choice(["亮亮的", "真多", "好多", "真亮", "小小的", "好漂亮"])
    if r < 0.86:  # short utterances: 宝宝 / 看看书 / 很开心 / 慢慢来
        return rng.choice(WORDS)
    # Two or three words in any order ("看电视晚安宝宝"): without these, a model trained
    # on a template grammar leans on it and mishears anything that does not start with
    # a subject, short utterances above all.
    return "".join(rng.choice(WORDS) for _ in range(rng.randint(2, 3)))


def make_splits(counts: dict, seed: int = 1) -> dict:
    """{split name: list of sentences}, drawn in the order of ``counts``. No sentence is in
    two splits, and none is a HELD_OUT utterance. Within a split a sentence occurs once,
    except short ones (up to SHORT characters), which may recur (said by other voices):
    there are only ~140 of them, and a model that rarely hears a short utterance gets them
    wrong."""
    rng = random.Random(seed)
    taken = set(HELD_OUT)  # by earlier splits
    out = {}
    for name, count in counts.items():
        texts, mine = [], set()
        tries = 0
        while len(texts) < count:
            tries += 1
            if tries > 100 * count + 1000:
                raise SystemExit(f"make_texts: cannot find {count} new sentences for {name}; ask for fewer")
            t = sentence(rng)
            if t in taken or (t in mine and len(t) > SHORT):
                continue
            mine.add(t)
            texts.append(t)
        taken |= mine
        out[name] = texts
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out-dir", required=True)
    p.add_argument("splits", nargs="+", help="NAME=COUNT, e.g. train=2000 dev=150 test=300")
    a = p.parse_args()
    counts = {}
    for spec in a.splits:
        name, count = spec.split("=")
        counts[name] = int(count)
    for name, texts in make_splits(counts, a.seed).items():
        with open(f"{a.out_dir}/{name}.txt", "w", encoding="utf-8") as f:
            f.write("\n".join(texts) + "\n")


if __name__ == "__main__":
    main()
