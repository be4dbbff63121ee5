//! COCO boxes (`[x, y, w, h]`): intersection over union, in the same floating-point order as
//! pycocotools' `bbIou` (`maskApi.c`), so that matches at a threshold's edge fall the same way.
//! Shared by box evaluation and by the detector's non-maximum suppression.

/// IoU of a detected box and a GT box, both `[x, y, w, h]`. For a crowd GT the union is the
/// detection's own area: a detection inside a crowd region overlaps it fully.
pub fn box_iou(dt: [f64; 4], gt: [f64; 4], gt_is_crowd: bool) -> f64 {
    let w = (dt[2] + dt[0]).min(gt[2] + gt[0]) - dt[0].max(gt[0]);
    if w <= 0.0 {
        return 0.0;
    }
    let h = (dt[3] + dt[1]).min(gt[3] + gt[1]) - dt[1].max(gt[1]);
    if h <= 0.0 {
        return 0.0;
    }
    let inter = w * h;
    let dt_area = dt[2] * dt[3];
    let union = if gt_is_crowd { dt_area } else { dt_area + gt[2] * gt[3] - inter };
    inter / union
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_by_hand() {
        // Two 10×10 boxes overlapping in a 5×10 strip: 50 / (100 + 100 − 50).
        assert_eq!(box_iou([0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 10.0, 10.0], false), 50.0 / 150.0);
        // Touching edges and disjoint boxes: 0.
        assert_eq!(box_iou([0.0, 0.0, 10.0, 10.0], [10.0, 0.0, 10.0, 10.0], false), 0.0);
        assert_eq!(box_iou([0.0, 0.0, 1.0, 1.0], [0.0, 5.0, 1.0, 1.0], false), 0.0);
        // Inside a crowd region: intersection over the detection's area only.
        assert_eq!(box_iou([2.0, 2.0, 4.0, 4.0], [0.0, 0.0, 100.0, 100.0], true), 1.0);
        assert_eq!(box_iou([2.0, 2.0, 4.0, 4.0], [0.0, 0.0, 100.0, 100.0], false), 16.0 / 10000.0);
        // Half outside the crowd: 8 / 16.
        assert_eq!(box_iou([-2.0, 0.0, 4.0, 4.0], [0.0, 0.0, 100.0, 100.0], true), 0.5);
    }
}
