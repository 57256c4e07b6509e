package prompt

import (
	"fmt"
	"strings"
)

// Our own small Chinese grammar, in the same spirit as the English one.

var (
	zhPeople  = []string{"老师", "工程师", "邻居", "学生们", "船长", "图书管理员", "小王", "李阿姨", "研究员", "司机", "画家", "店主"}
	zhTimes   = []string{"清晨", "傍晚", "下雨的时候", "去年冬天", "每个星期二", "午夜之前", "假期结束后", "第二天早上", "不久以后", "很多年以前"}
	zhPlaces  = []string{"在河边", "在车站旁边", "在老城区", "在山脚下", "在图书馆里", "在港口", "在小镇的市场上", "在实验室里", "在窗户前", "在桥的另一边"}
	zhVerbs   = []string{"修好了", "记录了", "整理了", "发现了", "检查了", "打开了", "画下了", "搬走了", "重新写了", "仔细看了看"}
	zhObjects = []string{"一本旧笔记本", "那台机器", "所有的信件", "花园里的灯", "一份报告", "几张地图", "那座小桥", "厨房的窗户", "测量的数据", "一列火车的时刻表"}
	zhAdj     = []string{"安静的", "狭窄的", "明亮的", "熟悉的", "遥远的", "拥挤的", "普通的", "奇怪的", "温暖的", "陈旧的"}
	zhNouns   = []string{"街道", "房间", "村庄", "河流", "市场", "走廊", "院子", "工厂", "码头", "教室"}
	zhReasons = []string{"因为路上积了水", "虽然天已经黑了", "因为没有人有空", "因为数字看起来不对", "趁着大家都在休息", "直到灯重新亮起来"}
	zhLinks   = []string{"后来，", "与此同时，", "不过，", "最后，", "起初，", "过了一会儿，", "于是，", "其实，"}
	zhQuotes  = []string{"我们再试一次吧", "时间比你想的要晚", "把窗户开着", "数字会告诉我们答案", "别忘了带笔记本"}
	zhUnits   = []string{"分钟", "公里", "页", "秒", "个人", "小时"}
)

func chineseSentence(r *rng) string {
	switch r.intn(7) {
	case 0:
		return fmt.Sprintf("%s，%s%s%s。", pick(r, zhTimes), pick(r, zhPeople), pick(r, zhPlaces), pick(r, zhVerbs)+pick(r, zhObjects))
	case 1:
		return fmt.Sprintf("%s%s%s，%s。", pick(r, zhLinks), pick(r, zhPeople), pick(r, zhVerbs)+pick(r, zhObjects), pick(r, zhReasons))
	case 2:
		return fmt.Sprintf("那条%s%s比平时更%s。", pick(r, zhAdj), pick(r, zhNouns), pick(r, []string{"热闹", "安静", "冷清", "干净", "拥挤"}))
	case 3:
		return fmt.Sprintf("“%s。”%s说。", pick(r, zhQuotes), pick(r, zhPeople))
	case 4:
		return fmt.Sprintf("大约用了 %d %s，%s才%s。", r.between(2, 120), pick(r, zhUnits), pick(r, zhPeople), pick(r, []string{"回来", "到达", "停下来", "想明白"}))
	case 5:
		return fmt.Sprintf("为什么%s会%s%s呢？", pick(r, zhPeople), pick(r, zhPlaces), pick(r, []string{"等那么久", "突然停下", "一直不说话", "笑起来"}))
	default:
		return fmt.Sprintf("%s%s%s，%s%s。", pick(r, zhPlaces), pick(r, zhPeople), pick(r, zhVerbs)+pick(r, zhObjects), pick(r, zhLinks), pick(r, zhReasons))
	}
}

func chineseParagraph(r *rng) string {
	n := r.between(3, 7)
	var b strings.Builder
	for range n {
		b.WriteString(chineseSentence(r))
	}
	return b.String()
}
